"""Reap cost as work grows: files moved off one dead worker, live workers to spread over, detection alone."""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from pathlib import Path

from common import save, table, target

from coordinator import WorkerCoordinator
from coordinator.store import is_postgres

STALE = 3600.0  # how long ago the dead worker last beat


# Fresh, empty state for one measurement: a context manager giving a file path or a postgresql:// URL.
FreshState = Callable[[], AbstractContextManager[str]]


def sqlite_files(folder: Path) -> FreshState:
    """A new state file in folder at each call."""
    return lambda: contextlib.nullcontext(str(folder / f"state-{time.monotonic_ns()}.db"))


def _insert(state: str, workers: list[tuple], files: Iterable[tuple]) -> None:
    if is_postgres(state):
        import psycopg

        with psycopg.connect(state, autocommit=True) as connection, connection.transaction():
            with connection.cursor().copy("COPY workers FROM STDIN") as copy:
                for row in workers:
                    copy.write_row(row)
            columns = "file_id, worker_id, state, epoch, assigned_at, updated_at, resend_at"
            with connection.cursor().copy(f"COPY assignments ({columns}) FROM STDIN") as copy:
                for worker_id, file_id, now in files:
                    copy.write_row((worker_id, file_id, "cached", 1, now, now, now))
        return
    with contextlib.closing(sqlite3.connect(state, isolation_level=None)) as connection:
        connection.execute("BEGIN")
        connection.executemany("INSERT INTO workers VALUES (?, ?, ?, ?, ?, ?, ?)", workers)
        connection.executemany(
            "INSERT INTO assignments (file_id, worker_id, state, epoch, assigned_at, updated_at, resend_at)"
            " VALUES (?, ?, 'cached', 1, ?, ?, ?)",
            ((file_id, worker_id, now, now, now) for file_id, worker_id, now in files),
        )
        connection.execute("COMMIT")


def prepared(state: str, files: int, live: int, silent: int = 1) -> WorkerCoordinator:
    """State with silent workers holding files between them, and live idle workers.

    The rows are bulk-inserted with plain SQL: going through assign_work would time the set-up, not the reap.
    """
    coordinator = WorkerCoordinator(state, heartbeat_timeout=5.0)
    now = time.time()
    # Staleness is judged on the monotonic clock for a file, on the server's wall clock (this machine's) for PostgreSQL.
    seen = now if is_postgres(state) else time.monotonic()
    workers = [(f"silent-{i}", "active", 1, now - STALE, now - STALE, now - STALE, seen - STALE) for i in range(silent)]
    workers += [(f"live-{i}", "active", 1, now, now, now, seen) for i in range(live)]
    _insert(state, workers, ((f"file-{i:07}", f"silent-{i % silent}", now) for i in range(files)))
    return coordinator


def time_reap(fresh: FreshState, files: int, live: int, repeats: int = 1) -> float:
    """Median seconds of reap() moving files off one silent worker onto live ones, each on fresh state."""
    times = []
    for _ in range(repeats):
        with fresh() as state:
            coordinator = prepared(state, files, live)
            for i in range(live):  # a large set-up outlasts the timeout: the live workers beat once more
                coordinator.record_heartbeat(f"live-{i}")
            began = time.perf_counter()
            report = coordinator.reap()
            times.append(time.perf_counter() - began)
            coordinator.close()
        assert len(report.moves) == files and report.declared_dead == ["silent-0"]
    return statistics.median(times)


def time_idle_reap(fresh: FreshState, files: int, repeats: int = 20) -> float:
    """Seconds of a reap that finds nobody dead, with files owned by live workers: what beat pays every period."""
    with fresh() as state:
        coordinator = prepared(state, files, 10)
        for i in range(10):
            coordinator.record_heartbeat(f"live-{i}")
        coordinator.reap()  # moves the silent worker's files once; what follows is idle
        for i in range(10):  # the move may outlast the timeout: the live workers beat once more
            coordinator.record_heartbeat(f"live-{i}")
        began = time.perf_counter()
        for _ in range(repeats):
            assert coordinator.reap().moves == []
        elapsed = (time.perf_counter() - began) / repeats
        coordinator.close()
    return elapsed


def time_detection(fresh: FreshState, workers: int, repeats: int = 20) -> float:
    """Seconds of detect_dead_workers() over workers, a tenth of them silent."""
    with fresh() as state:
        coordinator = prepared(state, 0, workers - workers // 10, silent=workers // 10)
        began = time.perf_counter()
        for _ in range(repeats):
            found = coordinator.detect_dead_workers()
        elapsed = (time.perf_counter() - began) / repeats
        coordinator.close()
    assert len(found) == workers // 10
    return elapsed


def main(quick: bool = False) -> dict:
    sizes = [1_000, 10_000, 100_000] if quick else [1_000, 10_000, 100_000, 1_000_000]
    live_counts = [10, 100, 1_000]
    worker_counts = [10, 1_000, 10_000]
    results: dict = {"reap": {}, "reap_by_live_workers": {}, "detect": {}}  # reap: median of 3 up to 100k
    with tempfile.TemporaryDirectory() as name:
        fresh = sqlite_files(Path(name))
        for files in sizes:
            results["reap"][files] = time_reap(fresh, files, 10, repeats=3 if files <= 100_000 else 1)
        results["idle_reap"] = time_idle_reap(fresh, sizes[-1])
        for live in live_counts:
            results["reap_by_live_workers"][live] = time_reap(fresh, 10_000, live)
        for workers in worker_counts:
            results["detect"][workers] = time_detection(fresh, workers)

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
