"""Numbers that arrive as text (a form field, a URL, a cookie, a command's argument, a chat
message): row ids, years, choice numbers.

Only ASCII digits make a number here. ``str.isdigit`` also accepts ``²`` or ``፩``, which
``int`` refuses (a server error for what is plainly a wrong number), and ``int`` refuses more
than 4,300 digits; an id must also fit a 64-bit column, or SQLite raises ``OverflowError``
and PostgreSQL refuses the statement.
"""

from __future__ import annotations

__all__ = ["MAX_ID", "parse_digits", "parse_id"]

MAX_ID = 2**63 - 1
"""The largest id a 64-bit column (SQLite ``INTEGER``, PostgreSQL ``BIGINT``) holds."""


def parse_digits(text: object, max_digits: int = 19) -> int | None:
    """``text`` as a whole number of at most ``max_digits`` ASCII digits (surrounding blanks
    ignored), or ``None``."""
    if not isinstance(text, str):
        return None
    digits = text.strip()
    if not 0 < len(digits) <= max_digits or not digits.isascii() or not digits.isdigit():
        return None
    return int(digits)


def parse_id(text: object) -> int | None:
    """``text`` as a row id (``"12"``), or ``None`` when it is not a whole number from 1 to
    :data:`MAX_ID` written in ASCII digits."""
    value = parse_digits(text)
    return value if value is not None and 1 <= value <= MAX_ID else None
