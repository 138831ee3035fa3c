"""The in-memory reference backend of lash-store (``memory://``)."""

from .backend import MemoryBackend, MemoryStorage

__all__ = ["MemoryBackend", "MemoryStorage"]
