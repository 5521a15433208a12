"""Reap cost as work grows: files moved off one dead worker, live workers to spread over, detection alone."""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from common import save, table, target

from coordinator import WorkerCoordinator

STALE = 3600.0  # how long ago the dead worker last beat


def prepared(path: Path, files: int, live: int, silent: int = 1) -> WorkerCoordinator:
    """A state file with silent workers holding files between them, and live idle workers.

    The rows are bulk-inserted with plain SQL: going through assign_work would time the set-up, not the reap.
    """
    coordinator = WorkerCoordinator(str(path), heartbeat_timeout=5.0)
    now, seen = time.time(), time.monotonic()
    with sqlite3.connect(path, isolation_level=None) as connection:
        connection.execute("BEGIN")
        connection.executemany(
            "INSERT INTO workers VALUES (?, 'active', 1, ?, ?, ?, ?)",
            [(f"silent-{i}", now - STALE, now - STALE, now - STALE, seen - STALE) for i in range(silent)]
            + [(f"live-{i}", now, now, now, seen) for i in range(live)],
        )
        connection.executemany(
            "INSERT INTO assignments (file_id, worker_id, state, epoch, assigned_at, updated_at, resend_at)"
            " VALUES (?, ?, 'cached', 1, ?, ?, ?)",
            ((f"file-{i:07}", f"silent-{i % silent}", now, now, now) for i in range(files)),
        )
        connection.execute("COMMIT")
    return coordinator


def time_reap(folder: Path, files: int, live: int, repeats: int = 1) -> float:
    """Median seconds of reap() moving files off one silent worker onto live ones, each on a fresh file."""
    times = []
    for _ in range(repeats):
        coordinator = prepared(folder / f"reap-{files}-{live}-{time.monotonic_ns()}.db", files, live)
        for i in range(live):  # a large set-up outlasts the timeout: the live workers beat once more
            coordinator.record_heartbeat(f"live-{i}")
        began = time.perf_counter()
        report = coordinator.reap()
        times.append(time.perf_counter() - began)
        assert len(report.moves) == files and report.declared_dead == ["silent-0"]
    return statistics.median(times)


def time_idle_reap(folder: Path, files: int, repeats: int = 20) -> float:
    """Seconds of a reap that finds nobody dead, with files owned by live workers: what beat pays every period."""
    coordinator = prepared(folder / f"idle-{files}.db", files, 10)
    coordinator.reap()  # moves the silent worker's files once; what follows is idle
    began = time.perf_counter()
    for _ in range(repeats):
        assert coordinator.reap().moves == []
    return (time.perf_counter() - began) / repeats


def time_detection(folder: Path, workers: int, repeats: int = 20) -> float:
    coordinator = prepared(folder / f"detect-{workers}.db", 0, workers - workers // 10, silent=workers // 10)
    began = time.perf_counter()
    for _ in range(repeats):
        found = coordinator.detect_dead_workers()
    elapsed = (time.perf_counter() - began) / repeats
    assert len(found) == workers // 10
    return elapsed


def main(quick: bool = False) -> dict:
    sizes = [1_000, 10_000, 100_000] if quick else [1_000, 10_000, 100_000, 1_000_000]
    live_counts = [10, 100, 1_000]
    worker_counts = [10, 1_000, 10_000]
    results: dict = {"reap": {}, "reap_by_live_workers": {}, "detect": {}}  # reap: median of 3 up to 100k
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        for files in sizes:
            results["reap"][files] = time_reap(folder, files, 10, repeats=3 if files <= 100_000 else 1)
        results["idle_reap"] = time_idle_reap(folder, sizes[-1])
        for live in live_counts:
            results["reap_by_live_workers"][live] = time_reap(folder, 10_000, live)
        for workers in worker_counts:
            results["detect"][workers] = time_detection(folder, workers)

    print("### reap(): one dead worker's files spread over live workers\n")
    base = results["reap"][sizes[0]] / sizes[0]
    table(
        ["files moved", "live workers", "reap s", "files/s", "s per file vs 1k"],
        [[f"{n:,}", 10, f"{s:.3f}", f"{n / s:,.0f}", f"{s / n / base:.2f}"] for n, s in results["reap"].items()],
    )
    print(f"A reap that finds nobody dead, {sizes[-1]:,} files owned: {results['idle_reap'] * 1000:.2f} ms\n")
    table(
        ["files moved", "live workers", "reap s"],
        [["10,000", f"{live:,}", f"{s:.3f}"] for live, s in results["reap_by_live_workers"].items()],
    )
    table(
        ["workers (10% silent)", "detect_dead_workers ms"],
        [[f"{n:,}", f"{s * 1000:.2f}"] for n, s in results["detect"].items()],
    )
    per_file = [s / n for n, s in results["reap"].items()]
    by_live = list(results["reap_by_live_workers"].values())
    results["targets"] = [
        target(f"reap() of 100k files < 1 s ({results['reap'][100_000]:.2f} s)", results["reap"][100_000] < 1.0),
        target(
            f"cost linear in files moved (s per file from {min(per_file) * 1e6:.1f} to {max(per_file) * 1e6:.1f} us)",
            max(per_file) < 2 * min(per_file),
        ),
        target(
            f"near-constant in live workers (10 -> 1,000: {by_live[0]:.3f} -> {by_live[-1]:.3f} s)",
            by_live[-1] < 2 * by_live[0],
        ),
    ]
    save("reap", results)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="up to 100k files instead of 1M")
    main(parser.parse_args().quick)
