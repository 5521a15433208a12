"""A hypothesis state machine over the public API, checking the ownership invariants after every step."""

import contextlib
import tempfile
from pathlib import Path

from helpers import ManualClock, fresh_state
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from coordinator import CoordinatorError, FencedError, FileState, WorkerCoordinator, WorkerStatus

TIMEOUT = 5.0
WORKERS = st.sampled_from(["w0", "w1", "w2", "w3"])
FILES = st.sampled_from([f"f{i}" for i in range(12)])


class Ownership(RuleBasedStateMachine):
    backend = "sqlite"

    def __init__(self):
        super().__init__()
        self.resources = contextlib.ExitStack()
        folder = Path(self.resources.enter_context(tempfile.TemporaryDirectory()))
        state = self.resources.enter_context(fresh_state(self.backend, folder))
        self.clock = ManualClock()
        self.coordinator = WorkerCoordinator(state, heartbeat_timeout=TIMEOUT, clock=self.clock)
        self.assigned: set[str] = set()
        self.epochs: dict[str, int] = {}

    def teardown(self):
        self.coordinator.close()
        self.resources.close()

    def owners(self):
        owners = {}
        for worker in self.coordinator.list_workers():
            for file_id in self.coordinator.get_worker_assignments(worker.worker_id):
                owners.setdefault(file_id, []).append(worker.worker_id)
        return owners

    @rule(worker=WORKERS)
    def register(self, worker):
        self.coordinator.register_worker(worker)

    @rule(worker=WORKERS)
    def heartbeat(self, worker):
        before = self.owners()
        with contextlib.suppress(CoordinatorError):
            self.coordinator.record_heartbeat(worker)
        assert self.owners() == before, "a heartbeat moved work"

    @rule(seconds=st.sampled_from([0.5, 2.0, TIMEOUT + 0.1]))
    def time_passes(self, seconds):
        self.clock.advance(seconds)

    @rule(file_id=FILES, worker=st.none() | WORKERS, reassign=st.booleans())
    def assign(self, file_id, worker, reassign):
        try:
            self.coordinator.assign(file_id, worker, reassign=reassign)
        except CoordinatorError:
            return
        self.assigned.add(file_id)

    @rule()
    def reap(self):
        self.coordinator.reap()
        statuses = {w.worker_id: w.status for w in self.coordinator.list_workers()}
        for file_id, owners in self.owners().items():
            assert statuses[owners[0]] is WorkerStatus.ACTIVE, f"{file_id} owned by a dead worker after a reap"

    @rule(worker=WORKERS)
    def retire(self, worker):
        with contextlib.suppress(CoordinatorError):
            self.coordinator.retire_worker(worker)

    @rule(dead=WORKERS, to=WORKERS)
    def redistribute(self, dead, to):
        with contextlib.suppress(CoordinatorError):
            self.coordinator.redistribute_from_dead_worker(dead, to)

    @precondition(lambda self: self.assigned)
    @rule(data=st.data(), stale=st.booleans())
    def complete(self, data, stale):
        file_id = data.draw(st.sampled_from(sorted(self.assigned)))
        record = self.coordinator.get_file(file_id)
        worker = record.worker_id or "w0"
        epoch = (record.epoch - 1 or record.epoch + 1) if stale else record.epoch
        try:
            self.coordinator.complete(file_id, worker, epoch, size=1, sha256="x")
        except FencedError:
            assert stale or record.worker_id is None
        else:
            assert not stale and record.worker_id == worker

    @invariant()
    def every_assigned_file_has_one_owner_or_is_parked(self):
        owners = self.owners()
        for file_id in self.assigned:
            record = self.coordinator.get_file(file_id)
            if record.worker_id is None:
                assert record.state is FileState.ORPHANED and file_id not in owners
            else:
                assert owners[file_id] == [record.worker_id]
        assert set(owners) <= self.assigned

    @invariant()
    def dead_and_retired_workers_own_nothing(self):
        for worker in self.coordinator.list_workers():
            if worker.status is not WorkerStatus.ACTIVE:
                assert self.coordinator.get_worker_assignments(worker.worker_id) == []

    @invariant()
    def epochs_only_grow(self):
        for file_id in self.assigned:
            epoch = self.coordinator.get_file(file_id).epoch
            assert epoch >= self.epochs.get(file_id, 1)
            self.epochs[file_id] = epoch


class PostgresOwnership(Ownership):
    backend = "postgres"


SETTINGS = settings(max_examples=150, stateful_step_count=40, deadline=None)
Ownership.TestCase.settings = PostgresOwnership.TestCase.settings = SETTINGS
test_ownership_on_sqlite = Ownership.TestCase
test_ownership_on_postgres = PostgresOwnership.TestCase
