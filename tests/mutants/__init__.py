"""The memory backend with one rule of the contract broken, many times over.

See :mod:`.harness`; the mutants are registered by importing their modules.
"""

from . import attachments, factory, integers, maintenance, order, queued_work, sessions
from .harness import CONTROL, MUTANTS, Mutant, installed

__all__ = [
    "CONTROL",
    "MUTANTS",
    "Mutant",
    "attachments",
    "factory",
    "installed",
    "integers",
    "maintenance",
    "order",
    "queued_work",
    "sessions",
]
