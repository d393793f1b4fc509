"""What text a database keeps: the one check every entry point applies to free text.

PostgreSQL refuses NUL in ``text`` (and ``\\u0000`` in ``jsonb``), and UTF-8 cannot encode an
unpaired surrogate, which JSON can still carry as an escape (``"\\ud83d"``). Other control
characters are refused with them: no one types them, and a report or a spreadsheet cell
holding one breaks. Tab, carriage return and line feed are fine.
"""

from __future__ import annotations

import re

__all__ = ["text_is_storable"]

_UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def text_is_storable(text: str) -> bool:
    """Whether ``text`` has no NUL or other control character (tab, CR and LF are fine) and
    no unpaired surrogate: PostgreSQL refuses NUL in text, UTF-8 cannot encode a surrogate."""
    return _UNSTORABLE.search(text) is None
