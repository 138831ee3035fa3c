"""lash-store: durable state for LLM agents behind one async protocol.

Import this package as ``lash``::

    import lash_store_api as lash

    async with await lash.open_storage("memory://") as storage:
        store = storage.session("s-1")
        ...
"""

from __future__ import annotations

from .artifacts import *  # noqa: F403
from .artifacts import __all__ as _artifacts_all
from .attachments import *  # noqa: F403
from .attachments import __all__ as _attachments_all
from .codec import canon, sha256_hex, sha256_of_bytes
from .common import *  # noqa: F403
from .common import __all__ as _common_all
from .errors import *  # noqa: F403
from .errors import __all__ as _errors_all
from .graph import active_path_ids, merge_ledger, select_graph
from .maintenance import *  # noqa: F403
from .maintenance import __all__ as _maintenance_all
from .plugins import (
    DEFAULT_URL,
    backend_for_url,
    hookimpl,
    hookspec,
    installed_backends,
    open_storage,
    plugin_manager,
)
from .processes import *  # noqa: F403
from .processes import __all__ as _processes_all
from .queued_work import *  # noqa: F403
from .queued_work import __all__ as _queued_work_all
from .sessions import *  # noqa: F403
from .sessions import __all__ as _sessions_all
from .storage import (
    Backend,
    Capabilities,
    Facet,
    MigratingBackend,
    MigrationReport,
    Storage,
    StorageBase,
)
from .triggers import *  # noqa: F403
from .triggers import __all__ as _triggers_all

__all__ = [
    *_artifacts_all,
    *_attachments_all,
    *_common_all,
    *_errors_all,
    *_maintenance_all,
    *_processes_all,
    *_queued_work_all,
    *_sessions_all,
    *_triggers_all,
    "DEFAULT_URL",
    "Backend",
    "Capabilities",
    "Facet",
    "MigratingBackend",
    "MigrationReport",
    "Storage",
    "StorageBase",
    "active_path_ids",
    "backend_for_url",
    "canon",
    "hookimpl",
    "hookspec",
    "installed_backends",
    "merge_ledger",
    "open_storage",
    "plugin_manager",
    "select_graph",
    "sha256_hex",
    "sha256_of_bytes",
]
