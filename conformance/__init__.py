"""The lash-store conformance suite: one test per numbered behaviour of the spec.

Run it against any installed backend::

    pytest --pyargs lash_store_conformance --lash-store memory://
    lash-store conformance memory://
"""

from .plugin import behaviour

__all__ = ["behaviour"]
