"""``redact_url``: the one password masker for every URL the project prints."""

from __future__ import annotations

import pytest

from lash_store_api.backend import redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:pw@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgresql://u@h/db?password=x", "postgresql://u@h/db?password=***"),
        ("postgresql://u:pw@[::1]:5432/db", "postgresql://u:***@[::1]:5432/db"),
        ("postgresql://u:pw@[::1]/db", "postgresql://u:***@[::1]/db"),
        (
            "postgresql://u@h/db?sslmode=require&password=x&application_name=a",
            "postgresql://u@h/db?sslmode=require&password=***&application_name=a",
        ),
        ("postgresql://u:a%40b@h/db?PassWord=x#frag", "postgresql://u:***@h/db?PassWord=***#frag"),
        ("postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"),
        ("postgresql://:pw@h/db", "postgresql://:***@h/db"),
        ("postgresql://u:pw@h1:5432,h2:5433/db", "postgresql://u:***@h1:5432,h2:5433/db"),
        ("postgresql://u:pw@h?sslpassword=k", "postgresql://u:***@h?sslpassword=***"),
    ],
)
def test_passwords_in_urls_are_masked(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u@h:5432/db",
        "postgresql://h/db?schema=lash&pool_max_size=3",
        "postgresql://u@[2001:db8::1]:5432/db?passwordless=1",
        "memory://",
        "memory://name",
        "localhost",
        "",
    ],
)
def test_urls_without_a_password_are_unchanged(url: str) -> None:
    assert redact_url(url) == url


@pytest.mark.parametrize(
    ("conninfo", "shown"),
    [
        ("host=h user=u password=secret dbname=d", "host=h user=u password=*** dbname=d"),
        ("host=h password = 'a b\\' c' port=5432", "host=h password = *** port=5432"),
        ("password=secret", "password=***"),
        ("host=h sslpassword=k", "host=h sslpassword=***"),
        ("host=h dbname=d", "host=h dbname=d"),
    ],
)
def test_passwords_in_libpq_conninfo_strings_are_masked(conninfo: str, shown: str) -> None:
    assert redact_url(conninfo) == shown
