"""The Celery app and tasks in process, with celery.contrib.pytest's celery_app and celery_worker fixtures."""

from __future__ import annotations

import hashlib
import stat
import threading
import time

import pytest
from celery.signals import heartbeat_sent
from celery.utils.nodenames import worker_direct

import tasks
from coordinator import FileState, UnsafeFileIdError, WorkerStatus
from tasks import signals
from tasks.state import coordinator_of

TIMEOUT = 1.0


@pytest.fixture
def celery_config(tmp_path, state_url):
    (tmp_path / "source").mkdir()
    return {
        "broker_url": "memory://",
        "result_backend": "cache+memory://",
        "worker_direct": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "coordinator_db": state_url,
        "coordinator_source_dir": str(tmp_path / "source"),
        "coordinator_cache_dir": str(tmp_path / "cache"),
        "coordinator_heartbeat_timeout": TIMEOUT,
    }


@pytest.fixture(autouse=True)
def closes_its_connections(celery_app):
    """The app's coordinator lives as long as the process: close its connections (a PostgreSQL server counts them)."""
    yield
    coordinator_of(celery_app).close()


@pytest.fixture
def source(celery_app):
    def write(file_id: str, data: bytes) -> str:
        path = tasks.caching.source_path(celery_app, file_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return hashlib.sha256(data).hexdigest()

    return write


def run_cache_file(app, worker, file_id, epoch):
    return app.send_task("tasks.cache_file", args=(file_id, worker, epoch), queue=worker_direct(worker)).get(timeout=10)


def wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_the_worker_registers_when_ready(celery_app, celery_worker):
    worker = coordinator_of(celery_app).get_worker(celery_worker.hostname)
    assert worker.status is WorkerStatus.ACTIVE


def test_assign_caches_the_file_on_the_owner_atomically(celery_app, celery_worker, source):
    sha256 = source("docs/a.txt", b"hello" * 1000)

    owner = tasks.assign("docs/a.txt", app=celery_app)

    assert owner == celery_worker.hostname
    coordinator = coordinator_of(celery_app)
    wait_for(lambda: coordinator.get_file("docs/a.txt").state is FileState.CACHED)
    record = coordinator.get_file("docs/a.txt")
    assert (record.size, record.sha256) == (5000, sha256)
    folder = tasks.caching.worker_cache_dir(celery_app, owner)
    assert (folder / "docs/a.txt").read_bytes() == b"hello" * 1000
    assert [p.name for p in (folder / "docs").iterdir()] == ["a.txt"], "no temporary file is left behind"


def test_a_second_delivery_finds_the_file_cached_and_does_nothing(celery_app, celery_worker, source):
    source("a", b"x")
    tasks.assign("a", app=celery_app)
    wait_for(lambda: coordinator_of(celery_app).get_file("a").state is FileState.CACHED)

    result = run_cache_file(celery_app, celery_worker.hostname, "a", 1)

    assert result["outcome"] == "already_cached"


def test_a_stale_epoch_is_fenced_and_writes_nothing(celery_app, celery_worker, source):
    source("a", b"x")
    coordinator = coordinator_of(celery_app)
    coordinator.register_worker("other@host")
    coordinator.assign_work(celery_worker.hostname, "a")
    coordinator.assign("a", "other@host", reassign=True)  # epoch 2 belongs to another worker

    result = run_cache_file(celery_app, celery_worker.hostname, "a", 1)

    assert result["outcome"] == "fenced"
    assert not tasks.caching.cache_path(celery_app, celery_worker.hostname, "a").exists()
    assert coordinator.get_file("a").state is FileState.PENDING


def test_a_task_addressed_to_another_worker_is_fenced(celery_app, celery_worker, source):
    source("a", b"x")
    coordinator_of(celery_app).assign_work(celery_worker.hostname, "a")
    message = celery_app.send_task(
        "tasks.cache_file", args=("a", "ghost@host", 1), queue=worker_direct(celery_worker.hostname)
    )
    assert message.get(timeout=10)["outcome"] == "fenced"


def test_a_missing_source_marks_the_file_failed_with_the_reason(celery_app, celery_worker):
    coordinator_of(celery_app).assign_work(celery_worker.hostname, "missing.bin")

    result = run_cache_file(celery_app, celery_worker.hostname, "missing.bin", 1)

    record = coordinator_of(celery_app).get_file("missing.bin")
    assert result["outcome"] == "failed"
    assert record.state is FileState.FAILED and "FileNotFoundError" in record.error


def test_a_file_id_leaving_the_source_folder_is_refused_before_anything_is_sent(celery_app, celery_worker):
    with pytest.raises(UnsafeFileIdError):
        tasks.assign("../outside", app=celery_app)
    assert coordinator_of(celery_app).list_files() == []


@pytest.fixture
def heart():
    """Fire heartbeat_sent every 0.1 s, as Celery's Heart does in a real worker (the test worker has none)."""
    stop = threading.Event()

    def tick():
        while not stop.wait(0.1):
            heartbeat_sent.send(sender=None)

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join()


def test_reap_dead_workers_moves_a_silent_workers_files_and_sends_them(celery_app, celery_worker, source, heart):
    coordinator = coordinator_of(celery_app)
    coordinator.register_worker("ghost@host")
    for name in ("g1", "g2", "g3"):
        source(name, name.encode())
        coordinator.assign_work("ghost@host", name)
    time.sleep(TIMEOUT + 0.3)

    report = celery_app.send_task("tasks.reap_dead_workers").get(timeout=10)

    assert report["declared_dead"] == ["ghost@host"] and report["moved"] == 3 and report["sent"] == 3
    wait_for(lambda: all(coordinator.get_file(n).state is FileState.CACHED for n in ("g1", "g2", "g3")))
    assert coordinator.get_worker_assignments(celery_worker.hostname) == ["g1", "g2", "g3"]
    again = celery_app.send_task("tasks.reap_dead_workers").get(timeout=10)
    assert (again["declared_dead"], again["moved"]) == ([], 0)


def test_a_worker_told_it_was_declared_dead_drops_its_stale_cache_and_rejoins(celery_app, celery_worker, source):
    coordinator, me = coordinator_of(celery_app), celery_worker.hostname
    source("a", b"x")
    tasks.assign("a", app=celery_app)
    wait_for(lambda: coordinator.get_file("a").state is FileState.CACHED)
    coordinator.register_worker("other@host")
    coordinator.redistribute_from_dead_worker(me, "other@host")

    heartbeat_sent.send(sender=None)

    wait_for(lambda: coordinator.get_worker(me).incarnation == 2)
    assert coordinator.get_worker(me).status is WorkerStatus.ACTIVE
    wait_for(lambda: not tasks.caching.cache_path(celery_app, me, "a").exists())


def test_the_heartbeat_signal_hands_the_write_to_the_writer_thread(celery_app, celery_worker, monkeypatch):
    coordinator = coordinator_of(celery_app)
    threads = []
    record = coordinator.heartbeat
    monkeypatch.setattr(
        coordinator, "heartbeat", lambda w: threads.append(threading.current_thread().name) or record(w)
    )

    signals.heartbeat_due(sender=None)

    wait_for(lambda: threads)
    assert threads == ["coordinator-heartbeat"], "the event loop's thread wrote to the state file"


def test_a_symlink_leading_out_of_the_source_folder_is_refused(celery_app, celery_worker, tmp_path):
    (tmp_path / "secret").write_text("not yours")
    (tmp_path / "source" / "innocent").symlink_to(tmp_path / "secret")
    coordinator_of(celery_app).assign_work(celery_worker.hostname, "innocent")

    result = run_cache_file(celery_app, celery_worker.hostname, "innocent", 1)

    assert result["outcome"] == "failed"
    assert "leaves the folder" in coordinator_of(celery_app).get_file("innocent").error
    assert not tasks.caching.cache_path(celery_app, celery_worker.hostname, "innocent").exists()


def test_cache_folders_are_owner_only(celery_app, celery_worker, source):
    source("deep/er/file", b"x")
    tasks.assign("deep/er/file", app=celery_app)
    wait_for(lambda: coordinator_of(celery_app).get_file("deep/er/file").state is FileState.CACHED)
    root = tasks.caching.worker_cache_dir(celery_app, celery_worker.hostname)
    for folder in (root.parent, root, root / "deep", root / "deep/er"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


def test_a_pickled_message_is_refused(celery_app, celery_worker, source):
    source("a", b"x")
    source("b", b"y")
    coordinator = coordinator_of(celery_app)
    coordinator.assign_work(celery_worker.hostname, "a")
    coordinator.assign_work(celery_worker.hostname, "b")
    queue = worker_direct(celery_worker.hostname)

    celery_app.send_task("tasks.cache_file", args=("a", celery_worker.hostname, 1), queue=queue, serializer="pickle")
    run_cache_file(celery_app, celery_worker.hostname, "b", 1)  # the queue is served in order

    assert coordinator.get_file("a").state is FileState.PENDING
    assert coordinator.get_file("b").state is FileState.CACHED
