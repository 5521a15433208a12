"""Heartbeat throughput and latency on one state file, beside a bare-UPDATE ceiling and a naive implementation."""

from __future__ import annotations

import argparse
import heapq
import multiprocessing
import random
import sqlite3
import tempfile
import time
from pathlib import Path

from common import save, spread, table, target

from coordinator import WorkerCoordinator


def _ours(db_path: str, worker_ids: list[str], start: float, seconds: float, out) -> None:
    coordinator = WorkerCoordinator(db_path)
    for worker_id in worker_ids:
        coordinator.register_worker(worker_id)
    latencies = []
    while time.time() < start:
        time.sleep(0.001)
    deadline = start + seconds
    while time.time() < deadline:
        began = time.perf_counter()
        coordinator.record_heartbeat(worker_ids[0])
        latencies.append(time.perf_counter() - began)
    out.put(latencies)


def _paced(db_path: str, worker_ids: list[str], start: float, seconds: float, out, period: float) -> None:
    """Each worker beats every period seconds from a random phase; records the latency of each beat."""
    coordinator = WorkerCoordinator(db_path)
    for worker_id in worker_ids:
        coordinator.register_worker(worker_id)
    rng = random.Random(worker_ids[0])
    due = [(start + rng.uniform(0, period), w) for w in worker_ids]
    heapq.heapify(due)
    latencies, deadline = [], start + seconds
    while True:
        when, worker_id = due[0]
        if when >= deadline:
            break
        pause = when - time.time()
        if pause > 0:
            time.sleep(pause)
        began = time.perf_counter()
        coordinator.record_heartbeat(worker_id)
        latencies.append(time.perf_counter() - began)
        heapq.heapreplace(due, (when + period, worker_id))
    out.put(latencies)


def run_processes(work, db_path: str, groups: list[list[str]], seconds: float, *extra) -> list[float]:
    """Run work in one process per group of worker ids, all starting together; returns every latency measured."""
    out = multiprocessing.Queue()
    start = time.time() + 1.0 + 0.02 * len(groups)
    processes = [
        multiprocessing.Process(target=work, args=(db_path, group, start, seconds, out, *extra)) for group in groups
    ]
    for process in processes:
        process.start()
    latencies = [latency for _ in processes for latency in out.get()]
    for process in processes:
        process.join()
    return latencies


def flat_out(db_path: str, processes: int, seconds: float) -> tuple[float, dict[str, float]]:
    """Heartbeats/s and latency spread with processes each beating as fast as they can."""
    latencies = run_processes(_ours, db_path, [[f"flat-{processes}-{i}"] for i in range(processes)], seconds)
    return len(latencies) / seconds, spread(latencies)


def offered_load(db_path: str, workers: int, period: float, processes: int, seconds: float):
    """Heartbeats/s and latency spread with workers beating every period s, spread over processes."""
    ids = [f"paced-{i}" for i in range(workers)]
    latencies = run_processes(_paced, db_path, [ids[i::processes] for i in range(processes)], seconds, period)
    return len(latencies) / seconds, spread(latencies)


def ceiling(db_path: str, seconds: float) -> float:
    """The same UPDATE a heartbeat makes, in a bare sqlite3 loop with our pragmas (WAL, NORMAL, autocommit)."""
    WorkerCoordinator(db_path).register_worker("ceiling")
    connection = sqlite3.connect(db_path, isolation_level=None, timeout=5)
    connection.execute("PRAGMA synchronous = NORMAL")
    count, deadline = 0, time.time() + seconds
    while time.time() < deadline:
        connection.execute(
            "UPDATE workers SET last_heartbeat = ?, last_seen = ? WHERE worker_id = ? AND status = 'active'",
            (time.time(), time.monotonic(), "ceiling"),
        )
        count += 1
    connection.close()
    return count / seconds


def naive(folder: Path, seconds: float) -> float:
    """What a first attempt does: sqlite3 defaults (rollback journal), a connection per heartbeat: updates/s."""
    path = folder / "naive.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE workers (worker_id TEXT PRIMARY KEY, last_heartbeat REAL)")
        connection.execute("INSERT INTO workers VALUES ('naive', 0)")
    count, deadline = 0, time.time() + seconds
    while time.time() < deadline:
        connection = sqlite3.connect(path)
        connection.execute("UPDATE workers SET last_heartbeat = ? WHERE worker_id = ?", (time.time(), "naive"))
        connection.commit()
        connection.close()
        count += 1
    return count / seconds


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def main(quick: bool = False, processes: list[int] | None = None) -> dict:
    seconds = 1.0 if quick else 3.0
    counts = processes or ([1, 4, 16] if quick else [1, 4, 16, 64])
    paced_seconds = 4.0 if quick else 10.0
    results: dict = {"seconds": seconds}
    with tempfile.TemporaryDirectory() as folder:
        db_path = str(Path(folder) / "state.db")
        WorkerCoordinator(db_path)
        bare = ceiling(db_path, seconds)
        simple = naive(Path(folder), seconds)
        rows, flat = [], {}
        for processes in counts:
            rate, latency = flat_out(db_path, processes, seconds)
            flat[processes] = {"rate": rate, "latency": latency}
            rows.append([processes, f"{rate:,.0f}", ms(latency["median"]), ms(latency["p99"]), ms(latency["max"])])
        paced_rate, paced = offered_load(db_path, 1000, 2.0, 4, paced_seconds)

    print("### Heartbeats on one state file\n")
    table(["processes beating flat out", "heartbeats/s", "p50 ms", "p99 ms", "max ms"], rows)
    table(
        ["offered load", "heartbeats/s", "p50 ms", "p99 ms", "max ms"],
        [
            [
                "1,000 workers every 2 s, 4 processes",
                f"{paced_rate:,.0f}",
                ms(paced["median"]),
                ms(paced["p99"]),
                ms(paced["max"]),
            ]
        ],
    )
    one = flat[1]["rate"]
    table(
        ["reference (one process)", "updates/s", "ours as a ratio"],
        [
            ["bare sqlite3 UPDATE, same pragmas (ceiling)", f"{bare:,.0f}", f"{one / bare:.2f}"],
            ["naive: rollback journal, connection per call", f"{simple:,.0f}", f"{one / simple:.1f}x"],
        ],
    )
    results.update(flat=flat, paced={"rate": paced_rate, "latency": paced}, ceiling=bare, naive=simple)
    results["targets"] = [
        target(f"one process >= 50% of the bare-UPDATE ceiling ({one / bare:.0%})", one >= 0.5 * bare),
        target(f"one process >= 10x the naive implementation ({one / simple:.1f}x)", one >= 10 * simple),
        target(f"p99 record_heartbeat under 1,000 workers < 5 ms ({ms(paced['p99'])} ms)", paced["p99"] < 0.005),
    ]
    save("heartbeats", results)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter runs, fewer process counts")
    parser.add_argument("--processes", type=int, nargs="+", help="process counts to run flat out (1 comes first)")
    args = parser.parse_args()
    main(args.quick, sorted({1, *args.processes}) if args.processes else None)
