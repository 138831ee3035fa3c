"""``lash-store prune``: apply a retention policy, or count what it would remove."""

from __future__ import annotations

from typing import TextIO

from lash_store_api import PruneReport, RetentionPolicy, Storage

from .commands import CliError, StoreCommand, say
from .json_output import write_json

__all__ = ["pruning", "summary"]

#: What to give when neither a flag nor the URL names a bound.
NO_POLICY = (
    "nothing to prune by: give --sessions-idle-for, --process-logs-after or "
    "--occurrences-after (e.g. 30d), or the URL's prune_* options"
)


def summary(report: PruneReport) -> str:
    """The report in one line: what was removed, or for a dry run what would be."""
    verb = "would remove" if report.dry_run else "removed"
    return (
        f"{verb} {report.sessions} sessions "
        f"({report.sessions_kept} idle kept: queued work or a running process), "
        f"{report.process_logs} process logs ({report.process_events} events), "
        f"{report.occurrences} trigger occurrences ({report.reservations} reservations)"
    )


def pruning(
    url: str,
    sessions_idle_ms: int | None,
    process_logs_after_ms: int | None,
    occurrences_after_ms: int | None,
    *,
    dry_run: bool,
    as_json: bool = False,
) -> StoreCommand:
    """The command: the bounds given as flags, else the storage's ``prune_*`` options."""
    bounds = (sessions_idle_ms, process_logs_after_ms, occurrences_after_ms)
    given = any(b is not None for b in bounds)
    if not given and "prune_" not in url:
        raise CliError(NO_POLICY)
    policy = RetentionPolicy(*bounds) if given else None

    async def run(storage: Storage, shown: str, out: TextIO) -> None:
        report = await storage.maintenance.prune(policy, dry_run=dry_run)
        if as_json:
            write_json(report, out)
            return
        say(out, f"prune {shown}: {summary(report)}")

    return run
