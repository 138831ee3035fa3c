"""Artifacts: modules, raw artifact bytes, execution envs (spec/artifacts.md).

Numbered behaviours are ``artifacts-N``. Rules without a number are
``artifact-N``: ``artifact-1``, every kind survives a reopen (on a durable
backend, a second process); ``artifact-2``, a module's ``blob_refs`` must be
stored and stay GC roots while it is, even while GC sweeps in a loop;
``artifact-3``, bad input (a module
failing verification, an env under another spec's ref) raises naming the field
and writes nothing; ``artifact-4``, the kinds are kept apart and listed;
``artifact-5``, a second env put under one ref replaces its bytes.

Modules here are verified the way a runtime would: the suite's
:func:`verify_module` re-derives ``module_ref`` from the rest of the document,
supplied as the ``module_verifier`` option every backend takes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest

from lash_store_api import (
    JSON,
    ArtifactDecodeError,
    ArtifactEntry,
    ArtifactKind,
    Backend,
    BlobNotFound,
    Facet,
    GcReport,
    InvalidRequest,
    ModuleArtifact,
    Storage,
    execution_env_ref,
)
from lash_store_api.backend.codec import canon, sha256_hex

from ._fixtures import SWEEP_PAUSE_S
from .plugin import behaviour

ARTIFACTS = (Facet.ARTIFACTS,)
GC = (Facet.MAINTENANCE, Facet.ARTIFACTS)
ENV_SPEC: JSON = {"runtime": "python", "packages": ["httpx"], "vars": {"MODE": "ci"}}

Isolated = Callable[..., AbstractAsyncContextManager[Storage]]


def module(exports: JSON, **fields: JSON) -> dict[str, JSON]:
    """A module whose ref is derived from everything else in it."""
    body: dict[str, JSON] = {"ir": {"exports": exports}, "host_requirements": [], **fields}
    return {**body, "module_ref": "lashlang:v1:sha256:" + sha256_hex(body)}


def ref_of(artifact: ModuleArtifact) -> str:
    ref = artifact["module_ref"]
    assert isinstance(ref, str)
    return ref


def verify_module(artifact: ModuleArtifact) -> bool:
    body = {k: v for k, v in artifact.items() if k != "module_ref"}
    return artifact.get("module_ref") == "lashlang:v1:sha256:" + sha256_hex(body)


class CountingVerifier:
    """:func:`verify_module`, counting its calls; ``accept=False`` rejects everything."""

    def __init__(self, accept: bool = True) -> None:
        self.accept = accept
        self.calls = 0

    def __call__(self, artifact: ModuleArtifact) -> bool:
        self.calls += 1
        return self.accept and verify_module(artifact)


@asynccontextmanager
async def opened(backend: Backend, url: str, **options: Any) -> AsyncIterator[Storage]:
    """``url`` opened again, as a second process would, with ``options``."""
    storage = await backend.open(url, **options)
    try:
        yield storage
    finally:
        await storage.aclose()


# --- the numbered behaviours ---------------------------------------------------------------


@behaviour("artifacts-1", needs=ARTIFACTS)
@pytest.mark.asyncio
async def test_artifacts_1_env_round_trips_under_its_ref_and_a_second_handle(
    storage: Storage, reopen: Callable[[], Awaitable[Storage]]
) -> None:
    """An env put under its stable ref reads back identical, also through a second
    handle; the store reports the tier its backend declares (durable on PostgreSQL)."""
    store = storage.artifacts
    data = b'{"runtime": "python", "packages": ["httpx"], "vars": {"MODE": "ci"}}'
    ref = execution_env_ref(ENV_SPEC)
    assert ref == "process-env:sha256:" + sha256_hex(ENV_SPEC)
    assert await store.get_process_execution_env(ref) is None
    await store.put_process_execution_env(ref, data)
    assert await store.get_process_execution_env(ref) == data
    assert await (await reopen()).artifacts.get_process_execution_env(ref) == data
    assert store.durability_tier() == storage.capabilities.durability


@behaviour("artifacts-2", needs=ARTIFACTS)
@pytest.mark.asyncio
async def test_artifacts_2_unknown_module_ref_is_none(storage: Storage) -> None:
    assert await storage.artifacts.get_module_artifact(ref_of(module("absent"))) is None


@behaviour("artifacts-3", needs=ARTIFACTS)
@pytest.mark.asyncio
async def test_artifacts_3_a_module_reads_back_equal_and_verified(
    isolated_with: Isolated,
) -> None:
    """A module put reads back equal, verified by the hook on put and again on get; a
    second put of the same ref replaces it."""
    verifier = CountingVerifier()
    async with isolated_with(module_verifier=verifier) as storage:
        store = storage.artifacts
        built = module(["main"], notes="\u0000 and ünïcode")
        await store.put_module_artifact(built)
        assert verifier.calls == 1
        assert await store.get_module_artifact(ref_of(built)) == built
        assert verifier.calls == 2
        await store.put_module_artifact(built)
        assert await store.get_module_artifact(ref_of(built)) == built


@behaviour("artifacts-4", needs=ARTIFACTS)
@pytest.mark.asyncio
async def test_artifacts_4_raw_bytes_round_trip_and_the_last_put_wins(storage: Storage) -> None:
    store = storage.artifacts
    assert await store.get_artifact_bytes("wasm:build-1") is None
    await store.put_artifact_bytes("wasm:build-1", "application/wasm", b"\x00asm\x01")
    assert await store.get_artifact_bytes("wasm:build-1") == b"\x00asm\x01"
    await store.put_artifact_bytes("wasm:build-1", "ignored", b"")
    assert await store.get_artifact_bytes("wasm:build-1") == b""


@behaviour("artifacts-5", needs=ARTIFACTS)
@pytest.mark.asyncio
async def test_artifacts_5_a_stored_module_failing_verification_is_a_decode_error(
    storage: Storage, lash_backend: Backend
) -> None:
    """A stored module that the reader's verifier rejects raises ``ArtifactDecodeError``
    (a ``BackendError``) naming the ref, not ``None``."""
    built = module(["main"])
    async with opened(lash_backend, storage.url, module_verifier=verify_module) as writer:
        await writer.artifacts.put_module_artifact(built)
    rejecting = CountingVerifier(accept=False)
    async with opened(lash_backend, storage.url, module_verifier=rejecting) as reader:
        with pytest.raises(ArtifactDecodeError) as caught:
            await reader.artifacts.get_module_artifact(ref_of(built))
        assert caught.value.record == built["module_ref"] and rejecting.calls == 1


# --- rules without a number ----------------------------------------------------------------


@behaviour("artifact-1", needs=ARTIFACTS)
@pytest.mark.asyncio
async def test_artifact_1_every_kind_survives_a_reopen(
    storage: Storage, reopen: Callable[[], Awaitable[Storage]]
) -> None:
    """Modules, raw bytes and envs read back through a second handle after the first
    one is closed."""
    built = module(["kept"])
    await storage.artifacts.put_module_artifact(built)
    await storage.artifacts.put_artifact_bytes("raw-1", "", b"raw bytes")
    env = execution_env_ref(ENV_SPEC)
    await storage.artifacts.put_process_execution_env(env, canon(ENV_SPEC))
    first = await reopen()
    await first.aclose()
    again = (await reopen()).artifacts
    assert await again.get_module_artifact(ref_of(built)) == built
    assert await again.get_artifact_bytes("raw-1") == b"raw bytes"
    assert await again.get_process_execution_env(env) == canon(ENV_SPEC)


@behaviour("artifact-2", needs=GC)
@pytest.mark.asyncio
async def test_artifact_2_a_modules_blobs_are_gc_roots(isolated_with: Isolated) -> None:
    """A module naming a blob that is not stored raises ``BlobNotFound`` and stores
    nothing; a stored module's blobs survive GC (past the grace period) while an
    unnamed blob goes."""
    async with isolated_with(blob_grace_seconds=0) as storage:
        store = storage.artifacts
        kept = await storage.blobs.put(b"constant table")
        loose = await storage.blobs.put(b"nobody names me")
        absent = sha256_hex("never stored")
        orphan = module(["x"], blob_refs=[kept, absent])
        with pytest.raises(BlobNotFound) as caught:
            await store.put_module_artifact(orphan)
        assert caught.value.ref == absent and caught.value.field == "artifact.blob_refs"
        assert await store.get_module_artifact(ref_of(orphan)) is None
        built = module(["y"], blob_refs=[kept])
        await store.put_module_artifact(built)
        report = await storage.maintenance.gc_unreachable()
        assert report.deleted_blob_count == 1
        assert await storage.blobs.get(kept) == b"constant table"
        assert await storage.blobs.get(loose) is None


@behaviour("artifact-3", needs=ARTIFACTS)
@pytest.mark.parametrize(
    ("call", "field"),
    [
        ("unverified", "artifact"),
        ("no_ref", "artifact.module_ref"),
        ("bad_blob_ref", "artifact.blob_refs[0]"),
        ("env_other_spec", "env_ref"),
        ("env_not_json", "data"),
        ("bytes_not_bytes", "data"),
        ("blank_ref", "artifact_ref"),
    ],
)
@pytest.mark.asyncio
async def test_artifact_3_bad_input_names_the_field_and_writes_nothing(
    isolated_with: Isolated, call: str, field: str
) -> None:
    async with isolated_with(module_verifier=verify_module) as storage:
        store = storage.artifacts
        tampered = {**module(["a"]), "ir": {"exports": ["b"]}}
        env = execution_env_ref(ENV_SPEC)
        calls: dict[str, Callable[[], Awaitable[None]]] = {
            "unverified": lambda: store.put_module_artifact(tampered),
            "no_ref": lambda: store.put_module_artifact({"ir": {}}),
            "bad_blob_ref": lambda: store.put_module_artifact(module([], blob_refs=["x"])),
            "env_other_spec": lambda: store.put_process_execution_env(env, b'{"other": 1}'),
            "env_not_json": lambda: store.put_process_execution_env(env, b"\xff"),
            "bytes_not_bytes": lambda: store.put_artifact_bytes("r", "", "text"),  # type: ignore[arg-type]
            "blank_ref": lambda: store.put_artifact_bytes("", "", b"x"),
        }
        with pytest.raises(InvalidRequest) as caught:
            await calls[call]()
        assert caught.value.field == field
        assert await store.list_artifacts() == []


@behaviour("artifact-4", needs=ARTIFACTS)
@pytest.mark.asyncio
async def test_artifact_4_kinds_are_apart_and_listed(storage: Storage) -> None:
    """One ref used for raw bytes does not read as an env or a module; the listing
    shows each artifact once, by kind then ref, with its size."""
    store = storage.artifacts
    env = execution_env_ref(ENV_SPEC)
    await store.put_artifact_bytes(env, "", b"raw")
    assert await store.get_process_execution_env(env) is None
    await store.put_process_execution_env(env, canon(ENV_SPEC))
    built = module(["m"])
    await store.put_module_artifact(built)
    await store.put_artifact_bytes("a-raw", "", b"12")
    assert await store.get_artifact_bytes(env) == b"raw"
    assert await store.list_artifacts() == [
        ArtifactEntry(ArtifactKind.MODULE, ref_of(built), len(canon(built))),
        ArtifactEntry(ArtifactKind.BYTES, "a-raw", 2),
        ArtifactEntry(ArtifactKind.BYTES, env, 3),
        ArtifactEntry(ArtifactKind.ENV, env, len(canon(ENV_SPEC))),
    ]


@behaviour("artifact-5", needs=ARTIFACTS)
@pytest.mark.asyncio
async def test_artifact_5_a_second_env_put_replaces_the_bytes(storage: Storage) -> None:
    """Two encodings of one env spec share its ref; the second put replaces the first's
    bytes (an upsert, as for every kind)."""
    store = storage.artifacts
    env = execution_env_ref(ENV_SPEC)
    spaced = b'{"runtime": "python", "packages": ["httpx"], "vars": {"MODE": "ci"}}'
    await store.put_process_execution_env(env, spaced)
    await store.put_process_execution_env(env, canon(ENV_SPEC))
    assert spaced != canon(ENV_SPEC)
    assert await store.get_process_execution_env(env) == canon(ENV_SPEC)


@behaviour("artifact-2", needs=GC)
@pytest.mark.asyncio
async def test_artifact_2_no_module_lands_naming_a_blob_gc_deleted(
    isolated_with: Isolated,
) -> None:
    """Writers put a blob, then a module naming it, while GC runs in a loop with no grace
    period: a put may be refused with ``BlobNotFound`` (the writer puts the blob again and
    retries), but a module that is stored always finds its blobs stored."""
    async with isolated_with(blob_grace_seconds=0) as storage:
        stop = asyncio.Event()
        sweeps: list[GcReport] = []

        async def collect_until_stopped() -> None:
            while not stop.is_set():
                sweeps.append(await storage.maintenance.gc_unreachable())
                await asyncio.sleep(SWEEP_PAUSE_S)

        async def write(writer: int) -> None:
            for n in range(6):
                data = f"table {n} of writer {writer}".encode()
                while True:
                    ref = await storage.blobs.put(data)
                    built = module([writer, n], blob_refs=[ref])
                    try:
                        await storage.artifacts.put_module_artifact(built)
                        break
                    except BlobNotFound as exc:
                        assert exc.ref == ref
                assert await storage.blobs.get(ref) == data, f"module {writer}/{n} lost its blob"

        collector = asyncio.create_task(collect_until_stopped())
        try:
            await asyncio.gather(*(write(w) for w in range(4)))
        finally:
            stop.set()
            await collector
        assert sweeps, "the collector should have swept while modules were put"
        await storage.maintenance.gc_unreachable()
        for entry in await storage.artifacts.list_artifacts():
            stored = await storage.artifacts.get_module_artifact(entry.ref)
            assert stored is not None
            for ref in stored["blob_refs"]:  # type: ignore[union-attr]
                assert await storage.blobs.get(str(ref)) is not None
