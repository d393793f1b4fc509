"""Scale and counts of the reliability suite (`PUFA_RELIABILITY=full`: `make reliability`)."""

from __future__ import annotations

from collections import Counter

from tests.helpers import FULL_RELIABILITY as FULL

COUNTS: Counter[str] = Counter()
"""What the reliability tests did: requests sent, responses by class, faults injected."""


def scale(quick: int, full: int) -> int:
    """``quick`` examples in ``make test``, ``full`` in ``make reliability``."""
    return full if FULL else quick
