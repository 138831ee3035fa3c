"""Mutants of the JSON limits and the clock option (docs/semantics.md).

A backend that parses execution env bytes or reads its clock by itself,
instead of through the kit, lets Python's own errors escape or stores what
the kit refuses.
"""

from __future__ import annotations

import json
from typing import Any

from lash_store_api import InvalidRequest
from lash_store_api.artifacts import ArtifactKind, execution_env_ref
from lash_store_api.backend.artifacts import module_verifier_option
from lash_store_api.backend.clock import CLOCK_OPTION, now_ms
from lash_store_api.backend.validation import check_id
from lash_store_memory.artifacts import MemoryArtifactStore
from lash_store_memory.backend import policy_of
from lash_store_memory.state import MemoryState

from .harness import MutantBackend, MutantStorage, breaks


@breaks("limits-7: env bytes are parsed by plain json.loads (NaN, Infinity, any nesting)")
class LenientEnvBytes(MemoryArtifactStore):
    async def put_process_execution_env(self, env_ref: str, data: bytes) -> None:
        check_id("env_ref", env_ref)
        spec = json.loads(data)
        if execution_env_ref(spec) != env_ref:
            raise InvalidRequest("env_ref", "is not the ref of this env spec")
        await self._put(ArtifactKind.ENV, env_ref, data, ())


@breaks("bad-input-18: the clock option is read as given, its results and failures unchecked")
class TrustsItsClock(MutantBackend):
    def storage(self, state: MemoryState, url: str, options: dict[str, Any]) -> MutantStorage:
        clock = options.get(CLOCK_OPTION) or now_ms
        verifier = module_verifier_option(dict(options))
        storage = MutantStorage.of(self.mutant)
        return storage(state, self.mutant, policy_of(url, options), clock, verifier)
