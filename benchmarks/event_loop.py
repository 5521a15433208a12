"""Cost on the worker: how long the heartbeat_sent handler holds Celery's event loop."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from celery import Celery
from celery.signals import heartbeat_sent
from common import save, spread, table, target

from tasks import signals
from tasks.state import coordinator_of


def main(quick: bool = False) -> dict:
    beats = 2_000 if quick else 10_000
    with tempfile.TemporaryDirectory() as folder:
        app = Celery("bench")
        app.conf.coordinator_db = str(Path(folder) / "state.db")
        app.conf.coordinator_heartbeat_timeout = 5.0
        app.conf.coordinator_cache_dir = str(Path(folder) / "cache")
        coordinator = coordinator_of(app)
        coordinator.register_worker("bench@host")
        writer = signals.HeartbeatWriter(app, "bench@host")
        writer.start()
        signals._writer = writer
        held = []
        try:
            for _ in range(beats):
                began = time.perf_counter()
                heartbeat_sent.send(sender=None)  # what Celery's Heart does on the event loop
                held.append(time.perf_counter() - began)
                time.sleep(0.0002)  # let the writer thread run, as the loop does between heartbeats
        finally:
            signals._writer = None
            writer.stop()
        direct = []
        for _ in range(beats):
            began = time.perf_counter()
            coordinator.record_heartbeat("bench@host")
            direct.append(time.perf_counter() - began)

    ours, inline = spread(held), spread(direct)
    print("### Event-loop hold per heartbeat\n")
    table(
        ["heartbeat_sent handler", "p50 us", "p99 us", "max us"],
        [
            [
                "ours: wakes the writer thread",
                f"{ours['median'] * 1e6:.1f}",
                f"{ours['p99'] * 1e6:.1f}",
                f"{ours['max'] * 1e6:.1f}",
            ],
            [
                "writing to SQLite on the loop (for comparison)",
                f"{inline['median'] * 1e6:.1f}",
                f"{inline['p99'] * 1e6:.1f}",
                f"{inline['max'] * 1e6:.1f}",
            ],
        ],
    )
    results = {"beats": beats, "handler": ours, "inline_write": inline}
    results["targets"] = [target(f"event-loop hold p99 < 1 ms ({ours['p99'] * 1e6:.1f} us)", ours["p99"] < 0.001)]
    save("event_loop", results)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2,000 heartbeats instead of 10,000")
    main(parser.parse_args().quick)
