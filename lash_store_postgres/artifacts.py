"""Artifacts on PostgreSQL: one ``artifacts`` table keyed by kind and ref.

A put of a module artifact holds the GC lock shared (as commits and blob puts
do, gc_run.py) while it checks that its blobs are stored and upserts: GC's
sweep waits for it and then sees the module's ``blob_refs`` as roots, so a
blob a module names is never collected under it.
"""

from __future__ import annotations

from collections.abc import Sequence

from lash_store_api import ArtifactEntry, ArtifactKind, DurabilityTier, ModuleVerifier
from lash_store_api.backend.artifacts import ArtifactStoreBase

from .db import Db

# Writes only if every blob the artifact names is stored; returns the missing ones. A
# ref only a session's checkpoint holds is copied into blobs (blobs_missing,
# repeatable/commit_turn.sql), where GC keeps what a module names.
_PUT = """
WITH absent AS (
    SELECT array_agg(r) AS refs FROM unnest(%(refs)s::text[]) AS r
     WHERE NOT EXISTS (SELECT FROM {s}.blobs AS b WHERE b.ref = r)),
missing AS (SELECT unnest({s}.blobs_missing(a.refs)) AS r FROM absent AS a
             WHERE a.refs IS NOT NULL),
up AS (
    INSERT INTO {s}.artifacts (kind, ref, data, blob_refs)
    SELECT %(kind)s, %(ref)s, %(data)s, %(refs)s::text[] WHERE NOT EXISTS (SELECT FROM missing)
    ON CONFLICT (kind, ref) DO UPDATE SET data = EXCLUDED.data, blob_refs = EXCLUDED.blob_refs),
named AS (  -- kept by a GC in progress, whose marks may predate this put (gc_run.py)
    INSERT INTO {s}.gc_named (ref)
    SELECT r FROM unnest(%(refs)s::text[]) AS r
     WHERE NOT EXISTS (SELECT FROM missing) AND EXISTS (SELECT FROM {s}.gc_runs))
SELECT r FROM missing"""

_GET = "SELECT data FROM {s}.artifacts WHERE kind = %(kind)s AND ref = %(ref)s"
# A keyset page of one kind on the C-collated (kind, ref) index of migration 0008.
_LIST = """
SELECT ref, length(data) FROM {s}.artifacts
 WHERE kind = %(kind)s AND (%(after)s::text IS NULL OR ref COLLATE "C" > %(after)s::text)
 ORDER BY ref COLLATE "C" LIMIT %(limit)s"""

#: The blobs stored module artifacts name: GC roots (gc_run.py).
MODULE_BLOB_ROOTS = "SELECT DISTINCT unnest(blob_refs) FROM {s}.artifacts WHERE kind = 'module'"


class PostgresArtifactStore(ArtifactStoreBase):
    def __init__(self, db: Db, verifier: ModuleVerifier) -> None:
        super().__init__(verifier, DurabilityTier.DURABLE)
        self._db = db

    async def _put(
        self, kind: ArtifactKind, ref: str, data: bytes, blob_refs: Sequence[str]
    ) -> list[str]:
        db = self._db
        params = {"kind": kind.value, "ref": ref, "data": data, "refs": list(blob_refs)}
        async with db.pipelined(f"storing a {kind.value} artifact", record=ref) as conn:
            if blob_refs:
                await db.hold_gc_shared(conn)
            cur = await conn.execute(db.q(_PUT), params)
        return [str(r) for (r,) in await cur.fetchall()]

    async def _get(self, kind: ArtifactKind, ref: str) -> bytes | None:
        db = self._db
        async with db.pipelined(f"loading a {kind.value} artifact", record=ref) as conn:
            cur = await conn.execute(db.q(_GET), {"kind": kind.value, "ref": ref})
        row = await cur.fetchone()
        return None if row is None else bytes(row[0])

    async def _list(
        self, kind: ArtifactKind, after: str | None, limit: int | None
    ) -> list[ArtifactEntry]:
        db = self._db
        params = {"kind": kind.value, "after": after, "limit": limit}
        async with db.pipelined("listing artifacts") as conn:
            cur = await conn.execute(db.q(_LIST), params)
        return [ArtifactEntry(kind, r, int(n)) for r, n in await cur.fetchall()]
