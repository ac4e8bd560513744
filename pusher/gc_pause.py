"""Fewer cyclic garbage collections while a delivery streams its rows.

Rows read from the warehouse, and the tuples made of them, are container objects: every 700
of them start a collection of the youngest generation. The batches in flight survive it, reach
the oldest generation and set off full collections, which scan every object the process holds
(its imports too): in a first sync of a million members, about a tenth of the process's CPU,
to find no garbage (these tuples hold no cycles). While a delivery runs, the youngest
generation's threshold is raised: collections still run, so cyclic garbage (an exception's
traceback, say) stays bounded, but about 70 times less often.
https://docs.python.org/3/library/gc.html#gc.set_threshold
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator

YOUNG_THRESHOLD = 50_000


@contextmanager
def fewer_collections(young: int = YOUNG_THRESHOLD) -> Iterator[None]:
    previous = gc.get_threshold()
    gc.set_threshold(max(young, previous[0]), *previous[1:])
    try:
        yield
    finally:
        gc.set_threshold(*previous)
