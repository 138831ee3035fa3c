"""The memory backend with one rule of the contract broken, many times over.

See :mod:`.harness`; the mutants are registered by importing their modules.
"""

from . import (
    artifacts,
    attachments,
    closing,
    factory,
    integers,
    json_limits,
    listing_pages,
    maintenance,
    order,
    process_grants,
    process_leases,
    process_semantics,
    process_waits,
    processes,
    queue_rules,
    queued_work,
    session_listing,
    session_rules,
    sessions,
    tail_reads,
    trigger_rules,
    triggers,
)
from .harness import CONTROL, MUTANTS, Mutant, installed

__all__ = [
    "CONTROL",
    "MUTANTS",
    "Mutant",
    "artifacts",
    "attachments",
    "closing",
    "factory",
    "installed",
    "integers",
    "json_limits",
    "listing_pages",
    "maintenance",
    "order",
    "process_grants",
    "process_leases",
    "process_semantics",
    "process_waits",
    "processes",
    "queue_rules",
    "queued_work",
    "session_listing",
    "session_rules",
    "sessions",
    "tail_reads",
    "trigger_rules",
    "triggers",
]
