"""The `coordinator` command on real state files: click's runner in process, and the installed command."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import run_sql

from coordinator import FileState, WorkerCoordinator
from tasks.cli import cli


@pytest.fixture
def state(state_url):
    """State with two live workers, one silent worker, and files in several states."""
    db = state_url
    coordinator = WorkerCoordinator(db, heartbeat_timeout=5.0)
    for worker in ("w1@host", "w2@host", "silent@host"):
        coordinator.register_worker(worker)
    coordinator.assign_work("w1@host", "a")
    coordinator.assign_work("w1@host", "b")
    coordinator.complete("a", "w1@host", 1, size=3, sha256="x")
    coordinator.assign_work("w2@host", "c")
    coordinator.fail("c", "w2@host", 1, error="FileNotFoundError: gone")
    coordinator.assign_work("silent@host", "d")
    run_sql(
        db,
        "UPDATE workers SET last_heartbeat = last_heartbeat - 60, last_seen = last_seen - 60 "
        "WHERE worker_id = 'silent@host'",
    )
    return db, coordinator


def run(db, *arguments):
    result = CliRunner().invoke(cli, ["--db", db, *arguments], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_status_shows_each_worker_and_the_files_by_state(state):
    db, _ = state
    output = run(db, "status")
    w1 = next(line for line in output.splitlines() if line.startswith("w1@host"))
    assert w1.split()[:3] == ["w1@host", "active", "1"] and w1.split()[-2:] == ["2", "1"]
    assert "files: pending 2, cached 1, orphaned 0, failed 1, quarantined 0 (total 4)" in output


def test_status_as_json_for_scripts(state):
    db, _ = state
    document = json.loads(run(db, "status", "--json"))
    assert document["files"] == {"pending": 2, "cached": 1, "orphaned": 0, "failed": 1, "quarantined": 0}
    silent = next(w for w in document["workers"] if w["worker_id"] == "silent@host")
    assert silent["heartbeat_age"] > 59 and silent["files"] == 1


def test_files_filters_by_worker_and_state(state):
    db, _ = state
    assert [r["file_id"] for r in json.loads(run(db, "files", "--json"))] == ["a", "b", "c", "d"]
    failed = json.loads(run(db, "files", "--state", "failed", "--json"))
    assert [(r["file_id"], r["error"]) for r in failed] == [("c", "FileNotFoundError: gone")]
    table = run(db, "files", "--worker", "w1@host")
    assert [line.split()[0] for line in table.splitlines()[1:]] == ["a", "b"]


def test_reap_by_hand_moves_a_silent_workers_files(state):
    db, coordinator = state
    output = run(db, "reap")
    assert "declared dead: silent@host" in output
    assert re.search(r"d: silent@host -> w[12]@host \[worker_dead, epoch 2\]", output)
    assert coordinator.get_file("d").state is FileState.PENDING


def test_retire_moves_the_workers_files_at_once(state):
    db, coordinator = state
    output = run(db, "retire", "w2@host")
    assert "retired w2@host; moved 1 files" in output
    assert coordinator.get_worker_assignments("w2@host") == []


def test_a_quarantined_file_is_shown_and_released_by_hand(state):
    db, _ = state
    coordinator = WorkerCoordinator(db, heartbeat_timeout=5.0, max_worker_losses=1)
    coordinator.begin("d", "silent@host", 1)  # the silent worker died while caching d
    coordinator.reap()
    assert [r["file_id"] for r in json.loads(run(db, "files", "--state", "quarantined", "--json"))] == ["d"]
    assert "quarantined 1" in run(db, "status")

    output = run(db, "release", "d")

    assert re.search(r"released d: w[12]@host", output)
    assert coordinator.get_file("d").state is FileState.PENDING


def test_metrics_in_prometheus_text_format(state):
    db, _ = state
    output = run(db, "metrics")
    assert 'coordinator_workers{status="active"} 3.0' in output
    assert 'coordinator_files{state="failed"} 1.0' in output
    assert "coordinator_file_moves_total 0.0" in output
    assert 'coordinator_heartbeat_age_seconds{worker="silent@host"}' in output


def command(tmp_path, *arguments, **env):
    environment = {**os.environ, "COORDINATOR_HOME": str(tmp_path), "COORDINATOR_SOURCE_DIR": str(tmp_path / "src")}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-m", "coordinator", *arguments], env=environment, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["status"], "no state database at"),
        (["--db", "{db}", "retire", "ghost@host"], "unknown worker 'ghost@host'"),
        (["--db", "{db}", "files", "--state", "lost"], "Invalid value for '--state'"),
        (["status", "--bogus"], "No such option '--bogus'"),
    ],
)
def test_errors_are_one_line_on_stderr_and_a_non_zero_exit(tmp_path, state, arguments, message):
    db, _ = state
    result = command(tmp_path / "home", *[a.format(db=db) for a in arguments])
    assert result.returncode != 0
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert result.stderr.startswith("coordinator: ")


def test_assign_records_and_enqueues_every_file_under_a_folder(tmp_path):
    source = tmp_path / "src"
    (source / "videos").mkdir(parents=True)
    for name in ("a.mp4", "b.mp4"):
        (source / "videos" / name).write_bytes(b"v")
    (source / "other").write_bytes(b"o")
    WorkerCoordinator(str(tmp_path / "state.db")).register_worker("w1@host")

    result = command(tmp_path, "assign", "other", "--from-dir", str(source / "videos"))

    assert result.returncode == 0, result.stderr
    assert "assigned 3 files (w1@host: 3)" in result.stdout
    coordinator = WorkerCoordinator(str(tmp_path / "state.db"))
    assert coordinator.get_worker_assignments("w1@host") == ["other", "videos/a.mp4", "videos/b.mp4"]
    queued = [p.name for p in (tmp_path / "broker/messages").iterdir() if p.name.endswith(".w1@host.dq2.msg")]
    assert len(queued) == 3, "each file's cache_file task waits in the owner's own queue"


def test_assign_refuses_a_folder_outside_the_source(tmp_path):
    (tmp_path / "src").mkdir()
    result = command(tmp_path, "assign", "--from-dir", str(tmp_path))
    assert result.returncode != 0 and "is not inside the source folder" in result.stderr


def processes_mentioning(text: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if text.encode() in (proc / "environ").read_bytes() + (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


@pytest.mark.e2e
def test_the_demo_recovers_every_file_and_leaves_no_process_behind(tmp_path):
    result = command(tmp_path, "demo", "--files", "60")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "files lost: 0" in result.stdout
    assert re.search(r"time to detect: +\d+\.\d s", result.stdout)
    assert re.search(r"time to full recovery: +\d+\.\d s", result.stdout)
    home = re.search(r"^home: (\S+)", result.stdout, re.M).group(1)
    time.sleep(0.5)
    assert processes_mentioning(home) == []
    assert not Path(home).exists()


def test_metrics_served_over_http_on_loopback(tmp_path, state):
    db, _ = state
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "coordinator", "--db", db, "metrics", "--serve", str(port)], stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "the metrics server did not start"
                time.sleep(0.1)
        assert 'coordinator_files{state="pending"} 2.0' in body
    finally:
        server.terminate()
        server.wait(10)
