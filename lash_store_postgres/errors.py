"""Driver errors become lash errors carrying what was being done, and for which record."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from lash_store_api.errors import BackendError, StoreError

#: Server errors that end the session: the server shut down, crashed or is not ready.
_SESSION_ENDED = frozenset({"57P01", "57P02", "57P03"})


def connection_lost(exc: BaseException) -> bool:
    """True when the failure is the connection's, not the statement's.

    libpq's own failures (no SQLSTATE: the socket closed, or the connection was
    left mid-exchange, e.g. "cannot exit pipeline mode while busy"), connection
    exceptions (SQLSTATE class 08) and the server ending the session
    (57P01-57P03, e.g. ``pg_terminate_backend``).
    """
    if not isinstance(exc, psycopg.OperationalError) or isinstance(
        exc, psycopg.errors.PipelineAborted
    ):
        return False
    state = exc.sqlstate
    return state is None or state.startswith("08") or state in _SESSION_ENDED


def describe(exc: psycopg.Error) -> str:
    state = exc.sqlstate
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"{first_line} [SQLSTATE {state}]" if state else first_line


@contextmanager
def wrapped(
    action: str,
    *,
    session_id: str | None = None,
    record: str | None = None,
    passthrough: tuple[type[psycopg.Error], ...] = (),
) -> Iterator[None]:
    """Re-raise any psycopg error inside the block as :class:`BackendError`.

    Lash errors, and the psycopg errors in ``passthrough`` (which the caller
    handles), pass through unchanged.
    """
    try:
        yield
    except StoreError:
        raise
    except passthrough:
        raise
    except psycopg.Error as exc:
        raise BackendError(
            f"{action}: {describe(exc)}", session_id=session_id, record=record
        ) from exc
