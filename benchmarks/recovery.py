"""Time to recover after kill -9: 3 real workers and beat, one worker killed, over several runs per broker."""

from __future__ import annotations

import argparse
import signal
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import celery_alone
from common import reachable, save, spread, table, target

from coordinator import WorkerStatus
from tasks.cluster import BROKER_PORTS as PORTS
from tasks.cluster import LOCAL_BROKERS as BROKERS
from tasks.cluster import LocalCluster

TIMEOUT, INTERVAL, REAP = 2.0, 0.5, 0.5


def one_run(broker: str, files: int) -> tuple[float, float, int]:
    """Seconds from the kill to detection and to the last file re-cached, and how many files moved."""
    with tempfile.TemporaryDirectory() as home:
        cluster = LocalCluster(
            Path(home),
            broker_url=BROKERS[broker],
            heartbeat_timeout=TIMEOUT,
            heartbeat_interval=INTERVAL,
            reap_interval=REAP,
        )
        try:
            sources = cluster.make_sample_files(files)
            names = [f"w{i}-{uuid.uuid4().hex[:6]}" for i in (1, 2, 3)]
            for name in names:
                cluster.start_worker(name)
            cluster.start_beat()
            cluster.assign(sources)
            nodes = {cluster.node(n) for n in names}
            cluster.wait_until(lambda: cluster.all_cached_on(sources, nodes), 120, "the first caching")
            victim = cluster.busiest(names)
            node = cluster.node(victim)
            held = len(cluster.coordinator.get_worker_assignments(node))
            survivors = nodes - {node}

            killed = time.monotonic()
            cluster.signal(victim, signal.SIGKILL)
            cluster.wait_until(
                lambda: cluster.coordinator.get_worker(node).status is WorkerStatus.DEAD, 60, "detection"
            )
            detected = time.monotonic() - killed
            cluster.wait_until(lambda: cluster.all_cached_on(sources, survivors), 120, "recovery")
            recovered = time.monotonic() - killed
        finally:
            cluster.stop()
    return detected, recovered, held


def main(quick: bool = False, brokers: list[str] | None = None, runs: int | None = None, files: int | None = None):
    """Time to recover on each broker; the Redis runs are followed by what Celery alone does."""
    runs = runs or (2 if quick else 10)
    files = files or (60 if quick else 300)
    brokers = [b for b in (brokers or ["filesystem", "redis"]) if BROKERS[b] is None or reachable(PORTS[b])]
    print(
        f"### Time to recover after kill -9\n\nthe busiest of 3 workers, {files} files; heartbeat timeout "
        f"{TIMEOUT:g} s, heartbeat every {INTERVAL:g} s, reap every {REAP:g} s; {runs} runs per broker\n"
    )
    results, rows = {}, []
    for broker in brokers:
        measured = [one_run(broker, files) for _ in range(runs)]
        detect, recover = spread([m[0] for m in measured]), spread([m[1] for m in measured])
        moved = round(statistics.mean(m[2] for m in measured))
        results[broker] = {"detect": detect, "recover": recover, "files_moved": moved, "runs": runs}
        rows.append(
            [broker, moved]
            + [f"{detect[k]:.2f}" for k in ("min", "median", "max")]
            + [f"{recover[k]:.2f}" for k in ("min", "median", "p90", "max")]
        )
    table(["broker", "files moved", "detect min s", "median", "max", "re-cached min s", "median", "p90", "max"], rows)
    if "redis" in brokers:
        results["celery_alone"] = celery_alone.main(quick, tasks=files)
    limit = TIMEOUT + REAP + 2
    results["targets"] = [
        target(
            f"recovery p90 < timeout + reap interval + 2 s = {limit:g} s on {broker} "
            f"({result['recover']['p90']:.2f} s)",
            result["recover"]["p90"] < limit,
        )
        for broker, result in results.items()
        if broker in BROKERS
    ]
    save("recovery", results)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--brokers", nargs="+", choices=list(BROKERS))
    parser.add_argument("--runs", type=int)
    parser.add_argument("--files", type=int)
    parser.add_argument("--quick", action="store_true", help="2 runs of 60 files per broker")
    args = parser.parse_args()
    main(args.quick, args.brokers, args.runs, args.files)
