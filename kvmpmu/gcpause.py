"""Pausing Python's cyclic garbage collector around work that makes only acyclic objects."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic collections inside: loading a large spec or running a long workload creates
    hundreds of thousands of records, and collecting them finds nothing but costs time."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
