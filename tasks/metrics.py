"""The coordinator's state as Prometheus metrics, read from the state file at every scrape."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from coordinator import FileState, WorkerCoordinator, WorkerStatus


class StateCollector:
    """A custom collector: each scrape is one look at the state, so every process sees the same figures."""

    def __init__(self, coordinator: WorkerCoordinator) -> None:
        self.coordinator = coordinator

    def collect(self):
        workers = self.coordinator.list_workers()
        counts = self.coordinator.count_files()
        now = time.time()

        by_status = GaugeMetricFamily("coordinator_workers", "Workers by status.", labels=["status"])
        for status in WorkerStatus:
            by_status.add_metric([status.value], sum(1 for w in workers if w.status is status))
        yield by_status

        by_state = GaugeMetricFamily("coordinator_files", "Assigned files by state.", labels=["state"])
        for state in FileState:
            by_state.add_metric([state.value], sum(c.files for c in counts if c.state is state))
        yield by_state

        moves = CounterMetricFamily(
            "coordinator_file_moves", "Changes of owner of all files: redistributed, reassigned or placed orphans."
        )
        moves.add_metric([], sum(c.moves for c in counts))
        yield moves

        age = GaugeMetricFamily(
            "coordinator_heartbeat_age_seconds", "Seconds since each active worker's last heartbeat.", labels=["worker"]
        )
        for worker in workers:
            if worker.status is WorkerStatus.ACTIVE:
                age.add_metric([worker.worker_id], now - worker.last_heartbeat)
        yield age

        dead = [w for w in workers if w.status is WorkerStatus.DEAD]
        latency = GaugeMetricFamily(
            "coordinator_detection_latency_seconds",
            "From the last heartbeat to the declaration of death, for the worker declared dead most recently.",
        )
        if dead:
            latest = max(dead, key=lambda w: w.status_changed_at)
            latency.add_metric([], latest.status_changed_at - latest.last_heartbeat)
        yield latency


def registry_for(coordinator: WorkerCoordinator) -> CollectorRegistry:
    """A registry holding only the coordinator's state."""
    registry = CollectorRegistry()
    registry.register(StateCollector(coordinator))
    return registry
