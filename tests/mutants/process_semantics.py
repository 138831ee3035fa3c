"""Mutants of the event language (spec/process_semantics.md): schemas, selectors, outputs.

Each replaces one function of the kit while, and only while, this backend
appends: the memory registry's append never suspends (its I/O methods await
nothing), so no other storage's append ever runs with the replacement.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from lash_store_api import JSON, ProcessEventAppendRequest, ProcessRecord
from lash_store_api.backend import payload_schema, process_semantics, process_wakes, selectors
from lash_store_api.backend.codec import sha256_hex
from lash_store_api.backend.process_append import PreparedAppend
from lash_store_memory.processes import MemoryProcessRegistry

from .harness import breaks


@contextmanager
def _replaced(module: ModuleType, name: str, value: object) -> Iterator[None]:
    old = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, old)


class _Replacing(MemoryProcessRegistry):
    """Decides appends with ``module.name`` replaced by :meth:`replacement`."""

    module: ModuleType
    name: str

    def replacement(self, original: Any) -> object:
        raise NotImplementedError

    async def _planned(
        self, pid: str, req: ProcessEventAppendRequest
    ) -> tuple[PreparedAppend, ProcessRecord | None]:
        original = getattr(self.module, self.name)
        with _replaced(self.module, self.name, self.replacement(original)):
            return await super()._planned(pid, req)


@breaks("process-8: enum members compare by Python equality, so true equals 1 and 1.0 equals 1")
class EnumPythonEquality(_Replacing):
    module, name = payload_schema, "json_equal"

    def replacement(self, original: Any) -> object:
        return lambda a, b: a == b


@breaks("process-8: a bool counts as a number")
class BoolIsNumber(_Replacing):
    module, name = payload_schema, "_is_number"

    def replacement(self, original: Any) -> object:
        return lambda v: isinstance(v, int | float)


@breaks("process-8: an additionalProperties schema allows every extra key unchecked")
class AdditionalSchemaIgnored(_Replacing):
    module, name = payload_schema, "_check_object"

    def replacement(self, original: Any) -> object:
        def check(schema: Mapping[str, Any], v: Any, path: str) -> object:
            if isinstance(schema.get("additionalProperties"), Mapping):
                schema = {**schema, "additionalProperties": True}
            return original(schema, v, path)

        return check


@breaks("process-8: the reserved __session_id__ key is checked against a closed schema")
class ReservedKeyChecked(_Replacing):
    module, name = payload_schema, "RESERVED_PAYLOAD_KEYS"

    def replacement(self, original: Any) -> object:
        return frozenset()


@breaks("process-8: items is not applied to an array's elements")
class ItemsIgnored(_Replacing):
    module, name = payload_schema, "_check_array"

    def replacement(self, original: Any) -> object:
        def check(schema: Mapping[str, Any], v: Any, path: str) -> object:
            return original({k: s for k, s in schema.items() if k != "items"}, v, path)

        return check


@breaks("process-9: an array index with a leading zero matches")
class PointerLeadingZeros(_Replacing):
    module, name = selectors, "_INDEX"

    def replacement(self, original: Any) -> object:
        return re.compile(r"[0-9]+")


@breaks("process-9: a pointer token is unescaped ~0 first, then ~1")
class PointerUnescapeOrder(_Replacing):
    module, name = selectors, "resolve_pointer"

    def replacement(self, original: Any) -> object:
        def resolve(document: JSON, pointer: str) -> object:
            if not pointer.startswith("/"):
                return original(document, pointer)
            tokens = [t.replace("~0", "~").replace("~1", "/") for t in pointer[1:].split("/")]
            return original(
                document, "".join("/" + selectors.escape_pointer_token(t) for t in tokens)
            )

        return resolve


@breaks("process-10: a well-formed await output of another kind than the state is wrapped")
class OutputFollowsState(_Replacing):
    module, name = process_semantics, "materialize_terminal"

    def replacement(self, original: Any) -> object:
        kinds = {"completed": "success", "failed": "failure", "cancelled": "cancelled"}

        def materialize(spec: Mapping[str, Any], payload: JSON, **kw: Any) -> Any:
            found = original(spec, payload, **kw)
            if found["await_output"].get("type") == kinds[spec["state"]]:
                return found
            # wrapped by the state, as a value that is no await output would be
            with _replaced(process_semantics, "is_await_output", lambda value: False):
                return original(spec, payload, **kw)

        return materialize


@breaks("process-11: a wake id hashes the dedupe key alone, not the target scope")
class WakeIdWithoutScope(_Replacing):
    module, name = process_wakes, "wake_id"

    def replacement(self, original: Any) -> object:
        return lambda scope_id, dedupe_key: "wake:" + sha256_hex([dedupe_key])
