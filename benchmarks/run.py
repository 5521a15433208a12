"""`make bench`: every benchmark in one run, so the noise of a shared machine falls on all of them alike."""

from __future__ import annotations

import argparse
import time

import backends
import event_loop
import heartbeats
import reap
import recovery


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="every part at a smaller size (under 2 minutes)")
    quick = parser.parse_args().quick
    started = time.monotonic()
    targets = []
    for part in (heartbeats, reap, backends, event_loop, recovery):
        targets += part.main(quick)["targets"]
        print()
    met = sum(t["met"] for t in targets)
    print(f"{met} of {len(targets)} targets met in {time.monotonic() - started:.0f} s; JSON in benchmarks/results/")


if __name__ == "__main__":
    main()
