"""Time to recover after kill -9: 3 real workers and beat, one worker killed, over several runs per broker."""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from coordinator import WorkerStatus
from tasks.cluster import LocalCluster

BROKERS = {
    "filesystem": None,
    "redis": "redis://127.0.0.1:6379/0",
    "amqp": "amqp://guest:guest@127.0.0.1:5672//",
}
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


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return {"min": ordered[0], "median": statistics.median(ordered), "p90": p90, "max": ordered[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--brokers", nargs="+", choices=list(BROKERS), default=list(BROKERS))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--quick", action="store_true", help="2 runs of 60 files per broker")
    args = parser.parse_args()
    runs, files = (2, 60) if args.quick else (args.runs, args.files)

    print(
        f"kill -9 of the busiest of 3 workers holding {files} files; heartbeat timeout {TIMEOUT:g} s, "
        f"heartbeat every {INTERVAL:g} s, reap every {REAP:g} s; {runs} runs"
    )
    print("| broker | files moved | detect min / median / max (s) | re-cached min / median / p90 / max (s) |")
    print("|---|---:|---|---|")
    results = {}
    for broker in args.brokers:
        measured = [one_run(broker, files) for _ in range(runs)]
        detect, recover = summary([m[0] for m in measured]), summary([m[1] for m in measured])
        moved = round(statistics.mean(m[2] for m in measured))
        results[broker] = {"detect": detect, "recover": recover, "files_moved": moved, "runs": runs}
        print(
            f"| {broker} | {moved} | {detect['min']:.2f} / {detect['median']:.2f} / {detect['max']:.2f} | "
            f"{recover['min']:.2f} / {recover['median']:.2f} / {recover['p90']:.2f} / {recover['max']:.2f} |"
        )
    target = TIMEOUT + REAP + 2
    for broker, result in results.items():
        met = "met" if result["recover"]["p90"] < target else "NOT met"
        print(f"target p90 < timeout + reap interval + 2 s = {target:g} s on {broker}: {met}")
    out = Path(__file__).parent / "results" / "recovery.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
