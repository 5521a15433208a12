"""Shared by the benchmarks: percentiles, Markdown tables, target lines and the JSON results folder."""

from __future__ import annotations

import json
import socket
import statistics
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def percentile(values: list[float], fraction: float) -> float:
    """The value below which fraction of values fall (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def spread(values: list[float]) -> dict[str, float]:
    """min, median, p90, p99 and max of values."""
    return {
        "min": min(values),
        "median": statistics.median(values),
        "p90": percentile(values, 0.90),
        "p99": percentile(values, 0.99),
        "max": max(values),
    }


def table(header: list[str], rows: list[list[object]]) -> None:
    """Print a Markdown table."""
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")
    print()


def target(description: str, met: bool) -> dict[str, object]:
    """Print whether a target is met, and return it for the JSON results."""
    print(f"- target {description}: {'met' if met else 'NOT met'}")
    return {"target": description, "met": met}


def save(name: str, results: dict) -> None:
    """Write results to benchmarks/results/<name>.json."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2, default=str))


def reachable(port: int) -> bool:
    """Whether a local service listens on 127.0.0.1:port."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    except OSError:
        return False
