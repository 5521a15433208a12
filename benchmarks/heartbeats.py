"""Heartbeats per second from N processes recording heartbeats as fast as they can on one state file."""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from pathlib import Path

from coordinator import WorkerCoordinator


def beat(db_path: str, worker_id: str, start: float, seconds: float, counts) -> None:
    coordinator = WorkerCoordinator(db_path)
    coordinator.register_worker(worker_id)
    while time.time() < start:
        time.sleep(0.001)
    count, deadline = 0, start + seconds
    while time.time() < deadline:
        coordinator.record_heartbeat(worker_id)
        count += 1
    counts.put(count)


def measure(processes: int, seconds: float) -> float:
    """Heartbeats per second summed over all processes."""
    with tempfile.TemporaryDirectory() as folder:
        db_path = str(Path(folder) / "state.db")
        WorkerCoordinator(db_path)
        counts = multiprocessing.Queue()
        start = time.time() + 1.0
        workers = [
            multiprocessing.Process(target=beat, args=(db_path, f"worker-{i}", start, seconds, counts))
            for i in range(processes)
        ]
        for worker in workers:
            worker.start()
        total = sum(counts.get() for _ in workers)
        for worker in workers:
            worker.join()
    return total / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--quick", action="store_true", help="one second per measurement")
    args = parser.parse_args()
    seconds = 1.0 if args.quick else args.seconds
    print("| processes | heartbeats/s | per process |")
    print("|---:|---:|---:|")
    for processes in args.processes:
        rate = measure(processes, seconds)
        print(f"| {processes} | {rate:,.0f} | {rate / processes:,.0f} |")


if __name__ == "__main__":
    main()
