"""Row ids typed or sent as text: only ASCII digits within a 64-bit column's range."""

from __future__ import annotations

import pytest

from core.ids import MAX_ID, parse_id


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12", 12),
        (" 7 ", 7),
        (str(MAX_ID), MAX_ID),
        (str(MAX_ID + 1), None),  # SQLite would raise OverflowError binding it
        ("9" * 40, None),
        ("0", None),
        ("-3", None),
        ("+3", None),
        ("²", None),  # str.isdigit() accepts it; int() does not
        ("١٢", None),  # Arabic-Indic digits: a number to int(), not an id here
        ("1\x00", None),
        ("", None),
        (None, None),
        (12, None),
    ],
)
def test_parse_id(text: object, expected: int | None) -> None:
    assert parse_id(text) == expected
