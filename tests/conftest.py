"""Fixtures shared by the project's tests."""

from __future__ import annotations

import os

import pytest
from pgserver import url_reachable

from lash_store_api.backend import redact_url

#: The server ``make test`` finds first when ``$LASH_STORE_PG_URL`` is unset.
DEFAULT_PG_URL = "postgresql://127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def pg_url() -> str:
    """A reachable PostgreSQL: ``$LASH_STORE_PG_URL``, else the local server on port 5432."""
    url = os.environ.get("LASH_STORE_PG_URL") or DEFAULT_PG_URL
    if not url_reachable(url):
        pytest.fail(
            f"no PostgreSQL reachable at {redact_url(url)}: run the tests with `make test` "
            "(it finds or starts one), or set LASH_STORE_PG_URL",
            pytrace=False,
        )
    return url
