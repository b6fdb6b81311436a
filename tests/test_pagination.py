from __future__ import annotations

import pytest

from protocol.errors import BadRequest
from server.http.pagination import decode_cursor, encode_cursor, page


def test_cursor_round_trip() -> None:
    key = ["2026-11-25T10:00:00+00:00", "5f0c"]
    assert decode_cursor(encode_cursor(key), 2) == key
    assert decode_cursor(None, 2) is None


@pytest.mark.parametrize("bad", ["!!!", "e30", encode_cursor([1]), encode_cursor([1, 2, 3])])
def test_foreign_cursors_are_bad_requests(bad: str) -> None:
    with pytest.raises(BadRequest) as info:
        decode_cursor(bad, 2)
    assert info.value.field == "cursor"


def test_page_takes_limit_and_points_after_the_last() -> None:
    rows = [(i, f"id{i}") for i in range(6)]
    items, cursor = page(rows, 5, lambda r: r)
    assert items == rows[:5]
    assert decode_cursor(cursor, 2) == [4, "id4"]
    items, cursor = page(rows[:3], 5, lambda r: r)
    assert items == rows[:3] and cursor is None
