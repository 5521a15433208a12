"""Who gets an orphan: the least-loaded live worker, as a pure function over counts."""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from typing import TypeVar

T = TypeVar("T")


def place(items: Sequence[T], loads: Mapping[str, int]) -> list[tuple[T, str]]:
    """Give each item, in order, to the worker with the fewest; ties go to the smallest worker id."""
    if not loads:
        raise ValueError("no worker to place on")
    heap = [(load, worker) for worker, load in loads.items()]
    heapq.heapify(heap)
    placed = []
    for item in items:
        load, worker = heap[0]
        placed.append((item, worker))
        heapq.heapreplace(heap, (load + 1, worker))
    return placed
