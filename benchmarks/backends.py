"""SQLite against PostgreSQL on this machine: heartbeat throughput and latency, and what a reap costs."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import heartbeats
import reap
from common import reachable, save, table, target

from coordinator import WorkerCoordinator
from tasks.cluster import postgres_schema

BACKENDS = ("sqlite", "postgres")


def measure(fresh: reap.FreshState, quick: bool) -> dict:
    """Every figure of the comparison on one backend; fresh gives new, empty state."""
    seconds = 1.0 if quick else 3.0
    results: dict = {"flat": {}, "reap": {}}
    with fresh() as state:
        WorkerCoordinator(state).close()
        for processes in (1, 4, 16):
            rate, latency = heartbeats.flat_out(state, processes, seconds)
            results["flat"][processes] = {"rate": rate, "latency": latency}
        rate, latency = heartbeats.offered_load(state, 1000, 2.0, 4, 4.0 if quick else 10.0)
        results["paced"] = {"rate": rate, "latency": latency}
    for files in (1_000, 10_000) if quick else (1_000, 10_000, 100_000):
        results["reap"][files] = reap.time_reap(fresh, files, 10, repeats=1 if quick else 3)
    results["idle_reap"] = reap.time_idle_reap(fresh, 10_000 if quick else 100_000)
    results["detect"] = reap.time_detection(fresh, 1_000)
    return results


def main(quick: bool = False) -> dict:
    if not reachable(5432):
        print("### SQLite against PostgreSQL\n\nskipped: no PostgreSQL on 127.0.0.1:5432\n")
        return {"targets": []}
    with tempfile.TemporaryDirectory() as folder:
        results = {
            "sqlite": measure(reap.sqlite_files(Path(folder)), quick),
            "postgres": measure(postgres_schema, quick),
        }
    sqlite, postgres = results["sqlite"], results["postgres"]

    def row(name: str, get, unit: str, scale: float = 1.0, digits: int = 2) -> list[str]:
        a, b = get(sqlite), get(postgres)
        return [name, f"{a * scale:,.{digits}f} {unit}", f"{b * scale:,.{digits}f} {unit}", f"{b / a:.2f}"]

    print("### SQLite against PostgreSQL (same machine, PostgreSQL on loopback; processes beating flat out)\n")
    rows = [
        row(f"heartbeats/s flat out, processes: {n}", lambda r, n=n: r["flat"][n]["rate"], "", digits=0)
        for n in (1, 4, 16)
    ]
    rows += [
        row("heartbeat p50, 16 processes flat out", lambda r: r["flat"][16]["latency"]["median"], "ms", 1000),
        row("heartbeat p99, 1,000 workers every 2 s", lambda r: r["paced"]["latency"]["p99"], "ms", 1000),
    ]
    rows += [row(f"reap moving {n:,} files", lambda r, n=n: r["reap"][n], "s", digits=3) for n in sqlite["reap"]]
    rows += [
        row("reap finding nobody dead", lambda r: r["idle_reap"], "ms", 1000),
        row("detect_dead_workers, 1,000 workers", lambda r: r["detect"], "ms", 1000),
    ]
    table(["", "SQLite", "PostgreSQL", "PostgreSQL / SQLite"], rows)
    paced_p99 = postgres["paced"]["latency"]["p99"]
    results["targets"] = [
        target(f"PostgreSQL p99 heartbeat under 1,000 workers < 5 ms ({paced_p99 * 1000:.2f} ms)", paced_p99 < 0.005),
        target(
            f"PostgreSQL reap finding nobody dead < 5 ms ({postgres['idle_reap'] * 1000:.2f} ms)",
            postgres["idle_reap"] < 0.005,
        ),
    ]
    save("backends", results)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter runs, up to 10k files")
    main(parser.parse_args().quick)
