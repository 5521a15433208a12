import os
import tempfile

import pytest

# Before tasks loads celeryconfig: whatever the in-process app writes (broker folders) goes to a scratch folder,
# not to ./.coordinator in the checkout.
os.environ.setdefault("COORDINATOR_HOME", tempfile.mkdtemp(prefix="coordinator-tests-"))
from celery.app.trace import setup_worker_optimizations  # noqa: E402
from celery.contrib.testing.worker import test_worker_started  # noqa: E402
from helpers import BACKENDS, TIMEOUT, ManualClock, fresh_state  # noqa: E402

from coordinator import WorkerCoordinator  # noqa: E402
from tasks import signals  # noqa: E402

TEST_WORKER = "tester@localhost"


@pytest.fixture
def clock():
    """The monotonic clock of the coordinator fixture, moved by hand."""
    return ManualClock()


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Each test that asks for state runs once on a SQLite file and once on PostgreSQL."""
    return request.param


@pytest.fixture
def state_url(backend, tmp_path):
    """Fresh, empty coordinator state on the backend: a file path or a postgresql:// URL."""
    with fresh_state(backend, tmp_path) as url:
        yield url


@pytest.fixture
def coordinator(state_url, clock):
    """A coordinator on fresh state, judging staleness on the hand-moved clock."""
    coordinator = WorkerCoordinator(state_url, heartbeat_timeout=TIMEOUT, clock=clock)
    yield coordinator
    coordinator.close()


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
