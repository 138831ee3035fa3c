"""Driver errors become lash errors carrying what was being done, and for which record."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from lash_store_api.errors import BackendError, StoreError

#: SQLSTATEs that mean "another writer holds or changed the head": serialization
#: failure, deadlock, lock not available (lock_timeout).
CONTENTION = frozenset({"40001", "40P01", "55P03"})


def sqlstate(exc: BaseException) -> str | None:
    return exc.sqlstate if isinstance(exc, psycopg.Error) else None


def connection_lost(exc: BaseException) -> bool:
    """True when the failure is the connection's, not the statement's."""
    return isinstance(exc, psycopg.OperationalError) and sqlstate(exc) is None


def describe(exc: psycopg.Error) -> str:
    state = exc.sqlstate
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"{first_line} [SQLSTATE {state}]" if state else first_line


@contextmanager
def wrapped(
    action: str, *, session_id: str | None = None, record: str | None = None
) -> Iterator[None]:
    """Re-raise any psycopg error inside the block as :class:`BackendError`.

    Lash errors raised inside pass through unchanged.
    """
    try:
        yield
    except StoreError:
        raise
    except psycopg.Error as exc:
        raise BackendError(
            f"{action}: {describe(exc)}", session_id=session_id, record=record
        ) from exc
