"""Numbered, checksummed SQL migrations shipped inside a backend's package.

A backend keeps ``migrations/NNNN_name.sql`` files (1..N, no gaps) in its
package, applies each once per store in order, and records each with the
SHA-256 of its text. :func:`verify` holds the one rule for what is recorded: a
version this code does not know, or a checksum that differs from the file's,
is refused with ``DatabaseSchemaMismatch`` rather than guessed at.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

from ..errors import DatabaseSchemaMismatch

__all__ = ["Script", "known_migrations", "shipped_scripts", "verify"]

MIGRATION_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Script:
    """A shipped SQL file: a numbered migration, or a repeatable script (``version=None``)."""

    filename: str
    name: str
    text: str
    version: int | None = None

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def shipped_scripts(
    package: str, folder: str, pattern: re.Pattern[str]
) -> list[tuple[re.Match[str], str]]:
    """``(name match, text)`` of the files in ``package/folder`` whose names match."""
    found = []
    for entry in resources.files(package).joinpath(folder).iterdir():
        match = pattern.match(entry.name)
        if match:
            found.append((match, entry.read_text(encoding="utf-8")))
    return found


def known_migrations(package: str, folder: str = "migrations") -> list[Script]:
    """The numbered migrations shipped in ``package``, by version."""
    found = sorted(
        (
            Script(m[0], m[2], text, int(m[1]))
            for m, text in shipped_scripts(package, folder, MIGRATION_FILE)
        ),
        key=lambda s: s.version or 0,
    )
    versions = [m.version for m in found]
    assert versions == list(range(1, len(found) + 1)), f"migrations must be 1..N, got {versions}"
    return found


def verify(component: str, recorded: dict[int, str], known: list[Script]) -> None:
    """Refuse a store whose recorded migrations are not a prefix of ``known``, checksums
    included."""
    by_version = {m.version: m for m in known}
    newer = sorted(v for v in recorded if v not in by_version)
    if newer:
        raise DatabaseSchemaMismatch(
            component,
            max(recorded),
            len(known),
            f"the database was migrated to version {newer[-1]} by a newer lash-store; "
            "upgrade lash-store to use it",
        )
    for version, checksum in sorted(recorded.items()):
        migration = by_version[version]
        if checksum != migration.checksum:
            raise DatabaseSchemaMismatch(
                component,
                f"{version} (checksum {checksum[:12]})",
                f"{version} (checksum {migration.checksum[:12]})",
                f"migration {migration.filename} was changed after it was applied",
            )
