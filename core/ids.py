"""Row ids that arrive as text (a form field, a URL, a command's argument).

Only ASCII digits are an id (``str.isdigit`` also accepts ``²``, which ``int`` refuses), and
only a number a 64-bit id column can hold: a longer one would make SQLite raise
``OverflowError`` and PostgreSQL refuse the statement, a server error for what is plainly a
wrong id.
"""

from __future__ import annotations

__all__ = ["MAX_ID", "parse_id"]

MAX_ID = 2**63 - 1
"""The largest id a 64-bit column (SQLite ``INTEGER``, PostgreSQL ``BIGINT``) holds."""


def parse_id(text: object) -> int | None:
    """``text`` as a row id (``"12"``, surrounding blanks ignored), or ``None`` when it is not
    a whole number from 1 to :data:`MAX_ID` written in ASCII digits."""
    if not isinstance(text, str):
        return None
    digits = text.strip()
    if not digits or len(digits) > 19 or not digits.isascii() or not digits.isdigit():
        return None
    value = int(digits)
    return value if 1 <= value <= MAX_ID else None
