"""Row ids typed or sent as text: only ASCII digits within a 64-bit column's range."""

from __future__ import annotations

import pytest

from core.ids import MAX_ID, parse_digits, parse_id


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


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("0", 4, 0),
        ("2027", 4, 2027),
        ("12345", 4, None),  # longer than the caller allows
        ("፩", 4, None),  # str.isdigit() says yes, int() says no
        ("9" * 5000, 19, None),  # int() refuses past 4,300 digits
        (" 3 ", 4, 3),
    ],
)
def test_parse_digits(text: str, limit: int, expected: int | None) -> None:
    assert parse_digits(text, limit) == expected
