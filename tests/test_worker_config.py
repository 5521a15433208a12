"""Bad settings stop `celery -A tasks worker` at start with one line on stderr."""

import subprocess
import sys

import pytest


def start_worker(tmp_path, *arguments, **env):
    (tmp_path / "source").mkdir(exist_ok=True)
    environment = {
        "PATH": "/usr/bin:/bin",
        "COORDINATOR_HOME": str(tmp_path),
        "COORDINATOR_SOURCE_DIR": str(tmp_path / "source"),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "celery", "-A", "tasks", "worker", "-l", "warning", *arguments],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def last_line(result):
    return result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"COORDINATOR_HEARTBEAT_TIMEOUT": "soon"}, "COORDINATOR_HEARTBEAT_TIMEOUT must be a positive number"),
        ({"COORDINATOR_REAP_INTERVAL": "-1"}, "COORDINATOR_REAP_INTERVAL must be a positive number"),
        ({"COORDINATOR_HEARTBEAT_INTERVAL": "4"}, "must be at most half of COORDINATOR_HEARTBEAT_TIMEOUT"),
        ({"COORDINATOR_SOURCE_DIR": "/nonexistent/source"}, "COORDINATOR_SOURCE_DIR '/nonexistent/source' is not a"),
    ],
)
def test_a_bad_setting_stops_the_worker_with_one_line(tmp_path, env, message):
    result = start_worker(tmp_path, **env)
    assert result.returncode != 0
    assert message in last_line(result)
    assert "Traceback" not in result.stderr


def test_a_state_file_that_is_not_a_database_stops_the_worker(tmp_path):
    (tmp_path / "state.db").write_text("not a database" * 100)
    result = start_worker(tmp_path)
    assert result.returncode != 0
    assert "coordinator: state database" in last_line(result) and "not a database" in last_line(result)


def test_a_worker_without_heartbeats_refuses_to_start(tmp_path):
    result = start_worker(tmp_path, "--without-heartbeat")
    assert result.returncode != 0
    assert "drop --without-heartbeat" in last_line(result)
    assert "Traceback" not in result.stderr
