"""Artifacts on SQLite: one ``artifacts`` table keyed by kind and ref.

A module's blob refs are kept beside it in ``artifact_blobs``, GC's roots
(:func:`artifact_blob_refs`). A put checks that those blobs are stored and
upserts in one write transaction; GC runs in one too, and SQLite lets one
writer at a time hold the file, so a sweep either ran before the put (which
then finds a blob gone and writes nothing) or after it (and sees the module's
refs as roots).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from lash_store_api import ArtifactEntry, ArtifactKind, ModuleVerifier
from lash_store_api.backend.artifacts import ArtifactStoreBase

from .db import Conn, Db

_BLOB_STORED = "SELECT 1 FROM blobs WHERE ref = ?"
_PUT = """
INSERT INTO artifacts (kind, ref, data) VALUES (?, ?, ?)
ON CONFLICT (kind, ref) DO UPDATE SET data = excluded.data"""
_FORGET_BLOBS = "DELETE FROM artifact_blobs WHERE module_ref = ?"
_NAME_BLOB = "INSERT INTO artifact_blobs (module_ref, blob_ref) VALUES (?, ?)"

_GET = "SELECT data FROM artifacts WHERE kind = ? AND ref = ?"
# A page of one kind is a range of the primary key; refs compare by bytes (code points).
_LIST = """
SELECT ref, length(data) FROM artifacts
 WHERE kind = :kind AND (:after IS NULL OR ref > :after)
 ORDER BY ref LIMIT :limit"""

_ROOTS = "SELECT DISTINCT blob_ref FROM artifact_blobs"


def artifact_blob_refs(conn: Conn) -> Iterable[str]:
    """The blobs stored module artifacts name: GC roots (read in GC's transaction)."""
    return [str(ref) for (ref,) in conn.execute(_ROOTS)]


def put(
    conn: Conn, kind: ArtifactKind, ref: str, data: bytes, blob_refs: Sequence[str]
) -> list[str]:
    """Upsert, unless a named blob is not stored: then write nothing and return the missing."""
    missing = [b for b in blob_refs if conn.execute(_BLOB_STORED, (b,)).fetchone() is None]
    if missing:
        return missing
    conn.execute(_PUT, (kind.value, ref, data))
    if kind is ArtifactKind.MODULE:
        conn.execute(_FORGET_BLOBS, (ref,))
        conn.executemany(_NAME_BLOB, [(ref, b) for b in blob_refs])
    return []


def get(conn: Conn, kind: ArtifactKind, ref: str) -> bytes | None:
    found = conn.execute(_GET, (kind.value, ref)).fetchone()
    return None if found is None else bytes(found[0])


def list_kind(
    conn: Conn, kind: ArtifactKind, after: str | None, limit: int | None
) -> list[ArtifactEntry]:
    params = {"kind": kind.value, "after": after, "limit": -1 if limit is None else limit}
    return [ArtifactEntry(kind, str(r), int(n)) for r, n in conn.execute(_LIST, params)]


class SqliteArtifactStore(ArtifactStoreBase):
    def __init__(self, db: Db, verifier: ModuleVerifier) -> None:
        super().__init__(verifier, db.options.tier)
        self._db = db

    async def _put(
        self, kind: ArtifactKind, ref: str, data: bytes, blob_refs: Sequence[str]
    ) -> list[str]:
        return await self._db.write(
            f"storing a {kind.value} artifact",
            lambda conn: put(conn, kind, ref, data, blob_refs),
            record=ref,
        )

    async def _get(self, kind: ArtifactKind, ref: str) -> bytes | None:
        return await self._db.read(
            f"loading a {kind.value} artifact", lambda conn: get(conn, kind, ref), record=ref
        )

    async def _list(
        self, kind: ArtifactKind, after: str | None, limit: int | None
    ) -> list[ArtifactEntry]:
        return await self._db.read(
            "listing artifacts", lambda conn: list_kind(conn, kind, after, limit)
        )
