"""Every URL form libpq reads opens PostgreSQL, with lash-store's options taken out of it.

The Unix-socket tests use the test server's own socket directory (``SHOW
unix_socket_directories``), so they run wherever the other PostgreSQL tests
run. Each connection names itself with a unique ``application_name`` (a libpq
parameter passed through the URL), so a test can see, from the server side,
that its storage really connected the way the URL says.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import psycopg
import pytest
from lash_store_conformance import _fixtures as f
from pg_cluster import scratch_schema

import lash_store_api as lash
from lash_store_postgres.config import parse_url, storage_url
from lash_store_postgres.storage import PostgresStorage


@dataclass(frozen=True, slots=True)
class Server:
    """Where the test server listens and who the tests connect as."""

    socket_dir: str
    port: int
    user: str
    password: str | None
    dbname: str

    def query(self, *, port: bool = True, **params: str) -> str:
        """The query of a URL: the user (and password), the port, then ``params``."""
        pieces = [f"user={quote(self.user, safe='')}"] + ([f"port={self.port}"] if port else [])
        if self.password is not None:
            pieces.append(f"password={quote(self.password, safe='')}")
        pieces += [f"{k}={quote(v, safe='')}" for k, v in params.items()]
        return "&".join(pieces)


@pytest.fixture(scope="module")
def server(pg_url: str) -> Server:
    with psycopg.connect(pg_url) as conn:
        row = conn.execute(
            "SELECT current_setting('unix_socket_directories'), current_setting('port')::int,"
            " current_user, current_database()"
        ).fetchone()
    assert row is not None
    dirs = [d.strip() for d in str(row[0]).split(",") if d.strip().startswith("/")]
    assert dirs, f"the test server has no Unix socket directory: {row[0]!r}"
    return Server(dirs[0], int(row[1]), str(row[2]), urlsplit(pg_url).password, str(row[3]))


@pytest.fixture
def schema(pg_url: str) -> Iterator[str]:
    with scratch_schema(pg_url) as name:
        yield name


async def connected_over(pg_url: str, application_name: str) -> list[str]:
    """How the server's sessions named ``application_name`` came in: "socket", "tcp" or both."""
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as admin:
        cur = await admin.execute(
            "SELECT client_addr IS NULL FROM pg_stat_activity WHERE application_name = %s",
            (application_name,),
        )
        return sorted({"socket" if local else "tcp" for (local,) in await cur.fetchall()})


async def round_trip(url: str) -> lash.Storage:
    """Open ``url``, commit one turn and read it back; the open storage."""
    storage = await lash.open_storage(url)
    store = storage.session("s")
    done = await store.commit_runtime_state(f.commit("s", None))
    read = await store.load_session(lash.FullGraph())
    assert read is not None and read.head_revision == done.head_revision == 1
    return storage


def libpq_connects(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=5):
            return True
    except psycopg.OperationalError:
        return False


# --- Unix sockets ---------------------------------------------------------------------


def socket_urls(server: Server, name: str) -> dict[str, str]:
    db = quote(server.dbname, safe="")
    encoded_dir = quote(server.socket_dir, safe="")
    return {
        "empty host": f"postgresql:///{db}?{server.query(application_name=name)}",
        "host in the query": (
            f"postgresql:///{db}?{server.query(host=server.socket_dir, application_name=name)}"
        ),
        "percent-encoded socket path": (
            f"postgresql://{encoded_dir}/{db}?{server.query(application_name=name)}"
        ),
        "socket path and port in the authority": (
            f"postgres://{encoded_dir}:{server.port}/{db}"
            f"?{server.query(port=False, application_name=name)}"
        ),
    }


@pytest.mark.parametrize(
    "form",
    [
        "empty host",
        "host in the query",
        "percent-encoded socket path",
        "socket path and port in the authority",
    ],
)
async def test_a_unix_socket_url_opens_postgresql_over_the_socket(
    pg_url: str, server: Server, schema: str, form: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"lash-url-{uuid.uuid4().hex[:12]}"
    base = socket_urls(server, name)[form]
    monkeypatch.delenv("PGHOST", raising=False)
    if form == "empty host" and not libpq_connects(base):
        # The server's socket is not where this libpq looks by default: an empty host then
        # means $PGHOST, which is how such a setup points libpq at it.
        monkeypatch.setenv("PGHOST", server.socket_dir)
    assert libpq_connects(base), f"libpq itself does not connect with {form}"
    url = f"{base}&schema={schema}&pool_min_size=2&lock_timeout=5s"
    storage = await round_trip(url)
    async with storage:
        assert await connected_over(pg_url, name) == ["socket"]
        assert storage.url == f"{base}&schema={schema}&pool_min_size=2&lock_timeout=5000"


async def test_the_empty_host_url_reaches_libpq_without_losing_its_slashes() -> None:
    conninfo, options = parse_url("postgresql:///test?user=postgres&schema=agents")
    assert conninfo == "postgresql:///test?user=postgres"
    assert options.schema == "agents"
    assert psycopg.conninfo.conninfo_to_dict(conninfo) == {"dbname": "test", "user": "postgres"}


# --- TCP ---------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["postgresql", "postgres", "localhost"])
async def test_a_tcp_url_opens_postgresql_over_tcp(
    pg_url: str, server: Server, schema: str, form: str
) -> None:
    name = f"lash-url-{uuid.uuid4().hex[:12]}"
    host = "localhost" if form == "localhost" else "127.0.0.1"
    scheme = "postgres" if form == "postgres" else "postgresql"
    base = (
        f"{scheme}://{host}/{quote(server.dbname, safe='')}?{server.query(application_name=name)}"
    )
    async with await round_trip(f"{base}&schema={schema}") as storage:
        assert await connected_over(pg_url, name) == ["tcp"]
        assert storage.url == f"{base}&schema={schema}"


def test_an_ipv6_host_reaches_libpq_as_written() -> None:
    url = "postgresql://app@[::1]:6543/agents?sslmode=disable&schema=eu&pool_max_size=3"
    conninfo, options = parse_url(url)
    assert conninfo == "postgresql://app@[::1]:6543/agents?sslmode=disable"
    assert psycopg.conninfo.conninfo_to_dict(conninfo) == {
        "user": "app",
        "host": "::1",
        "port": "6543",
        "dbname": "agents",
        "sslmode": "disable",
    }
    assert (options.schema, options.pool_max_size) == ("eu", 3)


async def test_an_ipv6_url_connects_to_the_ipv6_host() -> None:
    # Port 1 is closed: the error shows where libpq tried to connect.
    with pytest.raises(lash.BackendError) as failed:
        await lash.open_storage("postgresql://[::1]:1/test?connect_timeout=5")
    assert '"::1", port 1' in str(failed.value)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:secret@h1:5432,h2:5433/db?target_session_attrs=read-write",
        "postgresql://h/db?options=-c%20search_path%3Dx&application_name=a+b%20c",
        "postgresql://h/db?ssl=true",
        "postgresql://h/my%20db?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem",
        "postgresql://",
    ],
)
def test_libpq_parameters_reach_libpq_exactly_as_written(url: str) -> None:
    conninfo, _ = parse_url(f"{url}{'&' if '?' in url else '?'}schema=s&migrate=false")
    assert conninfo == url


# --- storage.url ----------------------------------------------------------------------------


async def test_storage_url_reopens_the_same_data_with_the_same_options(
    server: Server, schema: str
) -> None:
    query = server.query(host=server.socket_dir, application_name="lash-reopen")
    base = f"postgresql:///{quote(server.dbname, safe='')}?{query}"
    url = f"{base}&schema={schema}&pool_max_size=3&lock_timeout=1500ms&pool_timeout=2.5"
    options: dict[str, Any] = {"statement_timeout": "20s", "pool_check": True}
    first = await lash.open_storage(url, **options)
    async with first:
        await first.session("s").commit_runtime_state(f.commit("s", None))
        assert first.url == (
            f"{base}&schema={schema}&pool_max_size=3&pool_timeout=2.5&pool_check=true"
            "&lock_timeout=1500&statement_timeout=20000"
        )
        async with await lash.open_storage(first.url) as again:
            read = await again.session("s").load_session(lash.FullGraph())
            assert read is not None and read.head_revision == 1
            assert isinstance(again, PostgresStorage) and isinstance(first, PostgresStorage)
            assert again.options == first.options
            assert again.url == first.url


def test_storage_url_keeps_the_conninfo_and_adds_only_options_that_differ() -> None:
    conninfo, options = parse_url("postgresql:///test?host=/run/pg&schema=lash&migrate=true")
    assert storage_url(conninfo, options) == "postgresql:///test?host=/run/pg"
    conninfo, options = parse_url("postgresql:///test?prepare_threshold=5&migrate=off")
    assert storage_url(conninfo, options) == "postgresql:///test?migrate=false&prepare_threshold=5"
