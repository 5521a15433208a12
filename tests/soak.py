"""The chaos soak: keep assigning files while killing, terminating, freezing and restarting workers at random."""

from __future__ import annotations

import hashlib
import random
import re
import signal
import subprocess
import time
from contextlib import suppress
from dataclasses import dataclass, field

from coordinator import FileState, WorkerStatus
from tasks.cluster import LocalCluster

OUTCOME = re.compile(r"'outcome': '(\w+)', 'file_id': '([^']+)', 'worker_id': '[^']+', 'epoch': (\d+)")
ACTIONS = ("kill", "term", "stop")


@dataclass
class Death:
    """One worker taken down: when, how, and the files it held then."""

    worker: str
    action: str
    at: float
    held: dict[str, int]  # file id -> its epoch at the time
    incarnation: int
    recovered_after: float | None = None
    resumed: bool = False  # a stopped worker was sent SIGCONT


@dataclass
class SoakReport:
    deaths: list[Death] = field(default_factory=list)
    files: int = 0
    failed_missing_source: int = 0
    lost: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)
    cached_twice: int = 0

    def table(self) -> str:
        """The soak's figures as a Markdown table."""
        times = sorted(d.recovered_after for d in self.deaths if d.recovered_after is not None)
        by_action = ", ".join(f"{a} {sum(d.action == a for d in self.deaths)}" for a in ACTIONS)

        def pct(q: float) -> str:
            return f"{times[min(len(times) - 1, round(q * (len(times) - 1)))]:.2f} s" if times else "-"

        rows = [
            ("deaths", f"{len(self.deaths)} ({by_action})"),
            ("recoveries", str(len(times))),
            ("recovery p50 / p99 / max", f"{pct(0.5)} / {pct(0.99)} / {pct(1.0)}"),
            ("files assigned", str(self.files)),
            ("failed (source deleted on purpose)", str(self.failed_missing_source)),
            ("task executions", str(sum(self.outcomes.values()))),
            ("duplicates fenced", str(self.outcomes.get("fenced", 0))),
            ("duplicates found cached", str(self.outcomes.get("already_cached", 0))),
            ("cached twice under one epoch", str(self.cached_twice)),
            ("invariant violations", str(len(self.violations))),
            ("lost", str(len(self.lost))),
        ]
        return "\n".join(["| measure | value |", "|---|---:|", *[f"| {k} | {v} |" for k, v in rows]])


class Soak:
    """Drives a LocalCluster through random failures and checks the invariants as it goes and at the end."""

    def __init__(self, cluster: LocalCluster, *, workers: int, seconds: float, mean_gap: float, seed: int) -> None:
        self.cluster, self.seconds, self.mean_gap = cluster, seconds, mean_gap
        self.rng = random.Random(seed)
        self.names = [f"s{i}" for i in range(1, workers + 1)]
        self.sources: dict[str, str | None] = {}  # sha256, or None where the source was deleted on purpose
        self.epochs: dict[str, int] = {}
        self.report = SoakReport()
        self.down: dict[str, tuple[str, float]] = {}  # worker -> (action, when it comes back)
        self.batch = 0

    def nodes_up(self) -> set[str]:
        return {self.cluster.node(n) for n in self.names if n not in self.down}

    def run(self) -> SoakReport:
        for name in self.names:
            self.cluster.start_worker(name)
        self.cluster.start_beat()
        assigner = self.cluster.start_assigner()
        started = time.monotonic()
        next_failure = started + self.rng.expovariate(1 / self.mean_gap)
        try:
            while time.monotonic() - started < self.seconds:
                self.assign_some(assigner)
                if time.monotonic() >= next_failure:
                    self.fail_one()
                    next_failure = time.monotonic() + self.rng.expovariate(1 / self.mean_gap)
                self.bring_back()
                self.check()
                time.sleep(0.2)
            for name in list(self.down):
                self.down[name] = (self.down[name][0], 0.0)
            self.bring_back()
            assigner.stdin.close()
            assigner.wait(60)
            self.settle()
        finally:
            self.cluster.stop()
        self.count_outcomes()
        return self.report

    def assign_some(self, assigner) -> None:
        """A handful of new files; one in ten has its source deleted before it is cached."""
        ids = []
        for _ in range(self.rng.randint(1, 3)):
            file_id = f"soak/{self.batch:05}.bin"
            self.batch += 1
            data = self.rng.randbytes(self.rng.choice((0, 10, 5_000, 60_000)))
            missing = self.rng.random() < 0.1
            if not missing:
                (self.cluster.source_dir / file_id).parent.mkdir(parents=True, exist_ok=True)
                (self.cluster.source_dir / file_id).write_bytes(data)
            self.sources[file_id] = None if missing else hashlib.sha256(data).hexdigest()
            ids.append(file_id)
        assigner.stdin.write("".join(f"{f}\n" for f in ids))
        assigner.stdin.flush()

    def fail_one(self) -> None:
        candidates = [n for n in self.names if n not in self.down]
        if len(candidates) < 2:
            return  # keep one worker up, so recovery always has somewhere to go
        name = self.rng.choice(candidates)
        action = self.rng.choice(ACTIONS)
        node = self.cluster.node(name)
        held = {r.file_id: r.epoch for r in self.cluster.coordinator.list_files(worker_id=node)}
        incarnation = self.cluster.coordinator.get_worker(node).incarnation
        self.report.deaths.append(Death(node, action, time.monotonic(), held, incarnation))
        back = time.monotonic() + self.rng.uniform(1.0, 4.0)
        if action == "kill":
            self.cluster.signal(name, signal.SIGKILL)
        elif action == "term":
            self.cluster.signal(name, signal.SIGTERM, group=False)
        else:
            self.cluster.signal(name, signal.SIGSTOP)
            back = time.monotonic() + self.cluster.heartbeat_timeout + self.rng.uniform(0.5, 3.0)
        self.down[name] = (action, back)

    def bring_back(self) -> None:
        for name, (action, back) in list(self.down.items()):
            if time.monotonic() < back:
                continue
            if action == "stop":
                self.cluster.signal(name, signal.SIGCONT)
                node = self.cluster.node(name)
                [d for d in self.report.deaths if d.worker == node][-1].resumed = True
            else:
                process = self.cluster.processes[name]
                if action == "term":
                    with suppress(subprocess.TimeoutExpired):
                        process.wait(30)  # a warm shutdown finishes its tasks first
                with suppress(ProcessLookupError):
                    self.cluster.signal(name, signal.SIGKILL)  # pool children left behind, if any
                process.wait(30)
                self.cluster.start_worker(name)
            del self.down[name]

    def check(self) -> None:
        """Invariants while the storm goes on: epochs only grow; recoveries are timed."""
        records = {r.file_id: r for r in self.cluster.coordinator.list_files()}
        for file_id, record in records.items():
            if record.epoch < self.epochs.get(file_id, 0):
                self.report.violations.append(f"{file_id}: epoch went from {self.epochs[file_id]} to {record.epoch}")
            self.epochs[file_id] = record.epoch
        workers = {w.worker_id: w for w in self.cluster.coordinator.list_workers()}
        now = time.monotonic()
        for death in self.report.deaths:
            if death.recovered_after is not None:
                continue
            if all(self.settled(records[f], workers, epoch, death) for f, epoch in death.held.items()):
                death.recovered_after = now - death.at

    def settled(self, record, workers, epoch: int, death: Death) -> bool:
        """Cached on an active worker since the death, or failed because its source was deleted.

        Since the death: moved on to a new epoch, or kept by the victim's next incarnation (restarted under the
        same name before anyone noticed, it keeps its files and its cache folder), or kept by a stopped victim that
        was resumed before a reap noticed it (on a slow machine a pause a little past the timeout can be).
        """
        if record.state is FileState.FAILED:
            return self.sources[record.file_id] is None
        if record.state is not FileState.CACHED or workers[record.worker_id].status is not WorkerStatus.ACTIVE:
            return False
        if record.epoch > epoch:
            return True
        incarnation = workers[death.worker].incarnation
        return record.worker_id == death.worker and (
            incarnation > death.incarnation or (death.resumed and incarnation == death.incarnation)
        )

    def settle(self) -> None:
        """After the storm: every file must end cached with its bytes on a live worker, or failed for its source."""
        coordinator = self.cluster.coordinator
        self.report.files = len(self.sources)

        def done() -> bool:
            records = coordinator.list_files()
            self.check()
            return len(records) == len(self.sources) and all(
                (r.state is FileState.CACHED) or (r.state is FileState.FAILED and self.sources[r.file_id] is None)
                for r in records
            )

        with suppress(TimeoutError):
            self.cluster.wait_until(done, 120, "the cluster to settle")
        workers = {w.worker_id: w for w in coordinator.list_workers()}
        active = {w for w, worker in workers.items() if worker.status is WorkerStatus.ACTIVE}
        owned = [f for w in workers for f in coordinator.get_worker_assignments(w)]
        if len(owned) != len(set(owned)):
            self.report.violations.append("a file is owned twice")
        for file_id, sha256 in self.sources.items():
            try:
                record = coordinator.get_file(file_id)
            except LookupError:
                self.report.lost.append(f"{file_id}: never recorded")
                continue
            if sha256 is None:
                if record.state is FileState.FAILED and record.error:
                    self.report.failed_missing_source += 1
                else:
                    self.report.lost.append(f"{file_id}: source deleted, but {record.state.value}")
                continue
            if not self.cluster.cached_intact(file_id, sha256, active):
                self.report.lost.append(f"{file_id}: {record}")

    def count_outcomes(self) -> None:
        cached: dict[tuple[str, int], int] = {}
        for log in self.cluster.logs.glob("s*.log"):
            for outcome, file_id, epoch in OUTCOME.findall(log.read_text(errors="replace")):
                self.report.outcomes[outcome] = self.report.outcomes.get(outcome, 0) + 1
                if outcome == "cached":
                    cached[(file_id, int(epoch))] = cached.get((file_id, int(epoch)), 0) + 1
        self.report.cached_twice = sum(1 for n in cached.values() if n > 1)
