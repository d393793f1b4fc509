"""Scale and counts of the reliability suite (`PUFA_RELIABILITY=full`: `make reliability`)."""

from __future__ import annotations

import os
from collections import Counter

FULL = os.environ.get("PUFA_RELIABILITY", "") == "full"
"""Whether this is ``make reliability`` (many more examples) rather than ``make test``."""

COUNTS: Counter[str] = Counter()
"""What the reliability tests did: requests sent, responses by class, faults injected."""


def scale(quick: int, full: int) -> int:
    """``quick`` examples in ``make test``, ``full`` in ``make reliability``."""
    return full if FULL else quick
