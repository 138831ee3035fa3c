"""Mutants of closing a storage (design.md, departure 10)."""

from __future__ import annotations

from typing import Any

from lash_store_api.backend.artifacts import module_verifier_option
from lash_store_api.backend.clock import clock_option
from lash_store_memory.backend import policy_of
from lash_store_memory.state import MemoryState

from .harness import MutantBackend, MutantStorage, breaks


class DeafStorage(MutantStorage):
    async def aclose(self) -> None:
        return None  # it goes on serving calls, and its waits go on waiting


@breaks("departures-10: a closed storage goes on serving calls and never ends its waits")
class IgnoresClose(MutantBackend):
    def storage(self, state: MemoryState, url: str, options: dict[str, Any]) -> MutantStorage:
        clock = clock_option(dict(options))
        verifier = module_verifier_option(dict(options))
        storage = DeafStorage.of(self.mutant)
        return storage(state, self.mutant, policy_of(url, options), clock, verifier)
