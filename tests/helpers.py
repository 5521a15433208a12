"""Shared by the tests: a clock the tests move by hand."""

from __future__ import annotations

TIMEOUT = 5.0  # the heartbeat timeout of the coordinator fixture (conftest.py)


class ManualClock:
    """A clock that only moves when told, so staleness is decided without sleeping."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
