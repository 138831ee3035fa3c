"""One statement handed to libpq as it is: the hot path beneath psycopg's cursor.

psycopg's cursor adapts every parameter through its adapters' map and keeps a
cursor's state on each execute: with the 25 parameters of a process append, that
was about 30 µs of client time an append, of 400 (bench/README.md).
Here a statement is turned once into ``$n`` placeholders (cached by the storage,
db.py), its parameters are encoded by their Python type (the few types this
backend sends; any other is a programming error and raises ``TypeError``), it
is sent with libpq's extended protocol through psycopg's own ``pgconn`` and
wait loop (so a cancelled task still cancels the query on the server), and its
rows are loaded by psycopg's ``Transformer``, as a cursor would load them.

``Db.rows`` uses this only on a connection that needs nothing else from the
cursor: outside a pipeline, under the timeouts from its start (timeouts.py), in
UTF-8, with psycopg's prepared statements off. Everywhere else the same
statement goes through psycopg's cursor, with the same results.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import AsyncConnection, errors, generators, pq
from psycopg.adapt import Transformer

from .arrays import ARRAY_TYPES, BYTEA_OID, INT8_OID

__all__ = ["Params", "WireStatement", "compile_statement", "fetch"]

Params = Mapping[str, Any] | Sequence[Any] | None

_BOOL_OID = psycopg.adapters.types["bool"].oid
_NUMERIC_OID = psycopg.adapters.types["numeric"].oid
_INT8_MIN, _INT8_MAX = -(2**63), 2**63 - 1
_TEXT, _BINARY = pq.Format.TEXT, pq.Format.BINARY
_TUPLES_OK, _COMMAND_OK = pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK

# psycopg's placeholders: %s, %b, %t, %(name)s..., and %% for a literal percent sign.
_PLACEHOLDER = re.compile(rb"%(?:\((\w+)\))?([sbt%])")


@dataclass(frozen=True, slots=True)
class WireStatement:
    """A statement with ``$n`` placeholders: ``$n`` takes the parameter named
    ``names[n - 1]``, or with ``names`` ``None``, the n-th of ``count`` positional ones."""

    query: bytes
    names: tuple[str, ...] | None
    count: int


def compile_statement(statement: bytes) -> WireStatement:
    """``statement`` (psycopg's placeholders) as libpq takes it; a name used twice is
    one parameter. Mixed named and positional placeholders raise ``ValueError``, as
    psycopg refuses them."""
    names: list[str] = []
    positional = 0

    def number(match: re.Match[bytes]) -> bytes:
        name, kind = match.group(1), match.group(2)
        if kind == b"%":
            if name is not None:
                raise ValueError(f"bad placeholder {match.group(0)!r}")
            return b"%"
        nonlocal positional
        if name is None:  # each positional placeholder is a parameter of its own
            positional += 1
            return b"$%d" % positional
        key = name.decode()
        if key not in names:
            names.append(key)
        return b"$%d" % (names.index(key) + 1)

    query = _PLACEHOLDER.sub(number, statement)
    if names and positional:
        raise ValueError("a statement mixes named and positional placeholders")
    if names:
        return WireStatement(query, tuple(names), len(names))
    return WireStatement(query, None, positional)


def _encode(value: Any) -> tuple[bytes | None, int, pq.Format]:
    """A parameter's bytes, type oid (0: the server infers it) and format."""
    if value is None:
        return None, 0, _TEXT
    kind = type(value)
    if kind is str:
        return value.encode(), 0, _TEXT
    if kind is bool:
        return (b"t" if value else b"f"), _BOOL_OID, _TEXT
    if kind is int:
        oid = INT8_OID if _INT8_MIN <= value <= _INT8_MAX else _NUMERIC_OID
        return str(value).encode(), oid, _TEXT
    if kind is bytes:
        return value, BYTEA_OID, _BINARY
    array = ARRAY_TYPES.get(kind)
    if array is not None:
        oid, encode = array
        return encode(value), oid, _BINARY
    # Subclasses (a StrEnum member, an IntEnum one) go as the value they hold.
    if isinstance(value, str):
        return _encode(str.__str__(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return _encode(int(value))
    raise TypeError(f"no wire encoding for a parameter of type {kind.__name__}")


async def fetch(
    conn: AsyncConnection[Any], statement: WireStatement, params: Params, *, binary: bool
) -> list[tuple[Any, ...]]:
    """Run ``statement`` on ``conn`` (idle, autocommit, not in a pipeline): its rows,
    ``[]`` when it returns none. A server error raises psycopg's error of its class."""
    if statement.names is not None:
        assert isinstance(params, Mapping)
        values = [params[name] for name in statement.names]
    else:
        values = list(params or ())
        if len(values) != statement.count:
            raise TypeError(f"{statement.count} parameters expected, {len(values)} given")
    encoded = [_encode(value) for value in values]
    pgconn = conn.pgconn
    pgconn.send_query_params(
        statement.query,
        [data for data, _, _ in encoded],
        param_types=[oid for _, oid, _ in encoded],
        param_formats=[fmt for _, _, fmt in encoded],
        result_format=_BINARY if binary else _TEXT,
    )
    results = await conn.wait(generators.execute(pgconn))
    result = results[-1]
    if result.status == _TUPLES_OK:
        loader = Transformer(conn)
        loader.set_pgresult(result)
        return loader.load_rows(0, result.ntuples, tuple)
    if result.status == _COMMAND_OK:
        return []
    raise errors.error_from_result(result, encoding=conn.info.encoding)
