import os
import tempfile

import pytest

# Before tasks loads celeryconfig: whatever the in-process app writes (broker folders) goes to a scratch folder,
# not to ./.coordinator in the checkout.
os.environ.setdefault("COORDINATOR_HOME", tempfile.mkdtemp(prefix="coordinator-tests-"))
from celery.app.trace import setup_worker_optimizations  # noqa: E402
from celery.contrib.testing.worker import test_worker_started  # noqa: E402
from helpers import TIMEOUT, ManualClock  # noqa: E402

from coordinator import WorkerCoordinator  # noqa: E402
from tasks import signals  # noqa: E402

TEST_WORKER = "tester@localhost"


@pytest.fixture
def clock():
    """The monotonic clock of the coordinator fixture, moved by hand."""
    return ManualClock()


@pytest.fixture
def coordinator(tmp_path, clock):
    """A coordinator on a fresh state file, judging staleness on the hand-moved clock."""
    return WorkerCoordinator(str(tmp_path / "state.db"), heartbeat_timeout=TIMEOUT, clock=clock)


@pytest.fixture
def celery_worker_parameters(celery_app):
    """Tell the tracer the test worker's node name before it starts, as `celery worker` does for itself.

    Without it, task.request.hostname in the in-process worker is the bare host name, not the node name.
    """
    setup_worker_optimizations(celery_app, TEST_WORKER)
    return {"hostname": TEST_WORKER}


@test_worker_started.connect
def join_like_a_real_worker(sender, worker, consumer, **_):
    """The in-process test worker sends test_worker_started where `celery worker` sends worker_ready."""
    signals.join_cluster(sender=consumer)
