"""The long-running server's garbage collector settings.

Start-up leaves about 150,000 objects that live as long as the process (catalogs, ORM
mappings, compiled statements, translations, templates). Under load the collector's full
collections walked all of them: about 100 ms each, every few seconds, the whole process paused
(the web loop and the submission writer alike), and with the default young-generation threshold
(700 net allocations) hundreds of young collections a second besides. :func:`settle_heap`
moves what start-up left out of the collector's sight (``gc.freeze``) and lets the young
generation grow larger before it is looked at: nearly every object pufa makes while serving is
freed by its reference count, so few young collections are needed. Measured over one run
of the SQLite submission benchmark (2 × 8 s under load): 5–7 full collections of 100–130 ms
and ~700 young ones, 1.3–1.4 s in all, before; after, 2 young collections (8–10 ms each) and
no full one, plus one full collection of about 85 ms here, before the server listens. Frozen
alone (default thresholds), full collections took about 10 ms.
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_THRESHOLD", "settle_heap"]

YOUNG_THRESHOLD = 20_000
"""Net container allocations before a young collection (CPython's default is 700)."""


def settle_heap() -> None:
    """Collect, freeze what is left, raise the young threshold (the frozen count is on
    ``/metrics`` as ``pufa_gc_frozen_objects``).

    Call once, after start-up, in a process that serves for long (``pufa serve``)."""
    gc.collect()
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
