"""lash-store: durable state for LLM agents behind one async protocol.

Import this package as ``lash``::

    import lash_store_api as lash

    async with await lash.open_storage("memory://") as storage:
        store = storage.session("s-1")
        ...
"""

from __future__ import annotations

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
from .sessions import *  # noqa: F403
from .sessions import __all__ as _sessions_all
from .storage import Backend, Capabilities, Facet, Storage, StorageBase

__all__ = [
    *_attachments_all,
    *_common_all,
    *_errors_all,
    *_maintenance_all,
    *_sessions_all,
    "DEFAULT_URL",
    "Backend",
    "Capabilities",
    "Facet",
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
