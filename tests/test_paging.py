"""The kit's cursors: what a listing issued decodes back; anything else names the field."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import lash_store_api as lash
from lash_store_api.backend.paging import decode_cursor, encode_cursor, page_of

keys = st.tuples(st.text(), st.integers(min_value=-(2**63), max_value=2**63 - 1))


@given(keys)
def test_a_cursor_decodes_to_the_key_it_was_made_from(key: tuple[str, int]) -> None:
    assert decode_cursor("after", encode_cursor("things", key), "things", (str, int)) == key


@pytest.mark.parametrize(
    "tamper",
    [
        lambda c: c + "!",
        lambda c: c + "=",
        lambda c: c[:-1],
        lambda c: c.upper(),
        lambda c: c.replace("c1.", "c2."),
        lambda c: " " + c,
    ],
    ids=["junk-appended", "padding-appended", "cut", "case-changed", "other-version", "space"],
)
def test_a_cursor_changed_in_any_way_is_refused(tamper: object) -> None:
    cursor = encode_cursor("things", ("session-1", 7))
    changed = tamper(cursor)  # type: ignore[operator]
    assert changed != cursor
    with pytest.raises(lash.InvalidRequest) as raised:
        decode_cursor("after", changed, "things", (str, int))
    assert raised.value.field == "after"


def test_another_listings_cursor_or_shape_is_refused() -> None:
    cursor = encode_cursor("things", ("a", 1))
    for listing, shape in [("others", (str, int)), ("things", (str,)), ("things", (int, int))]:
        with pytest.raises(lash.InvalidRequest):
            decode_cursor("after", cursor, listing, shape)


def test_a_page_keeps_limit_rows_and_points_past_the_last() -> None:
    page = page_of(["a", "b", "c"], 2, "things", lambda row: (row,))
    assert page == ["a", "b"]
    assert decode_cursor("after", page.next_cursor, "things", (str,)) == ("b",)
    assert page_of(["a", "b"], 2, "things", lambda row: (row,)).next_cursor is None
    assert page_of(["a", "b", "c"], None, "things", lambda row: (row,)).next_cursor is None
