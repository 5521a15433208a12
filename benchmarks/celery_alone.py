"""Celery alone: plain acks_late tasks on Redis, one worker killed: when do its tasks run again?"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import redis
from common import save

HERE = Path(__file__).parent
BROKER = "redis://127.0.0.1:6379/0"


def main(quick: bool = False, tasks: int = 300) -> dict:
    """Start 3 plain workers, enqueue tasks, kill -9 one mid-way; wait (capped) until every task has run."""
    cap = 15.0 if quick else 60.0
    queue, key = f"plain-{uuid.uuid4().hex[:8]}", f"plain-done-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PYTHONPATH": str(HERE), "PLAIN_BROKER": BROKER, "PLAIN_QUEUE": queue}
    host = socket.gethostname()
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "plain_celery",
                "worker",
                "-n",
                f"plain{i}@{host}",
                "-c",
                "2",
                "-l",
                "warning",
                "--without-mingle",
                "--without-gossip",
            ],
            cwd=HERE,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for i in (1, 2, 3)
    ]
    sys.path.insert(0, str(HERE))
    os.environ.update(PLAIN_BROKER=BROKER, PLAIN_QUEUE=queue)
    from plain_celery import app, work

    results = redis.Redis.from_url(BROKER)
    try:
        deadline = time.monotonic() + 30
        while len(app.control.ping(timeout=0.5) or []) < 3:
            if time.monotonic() > deadline:
                raise RuntimeError("the plain workers did not start")
        for index in range(tasks):
            work.apply_async((index, key), queue=queue)
        while results.scard(key) < tasks // 4:
            time.sleep(0.01)
        killed = time.monotonic()
        os.killpg(workers[0].pid, signal.SIGKILL)
        done_at_kill = results.scard(key)
        while results.scard(key) < tasks and time.monotonic() - killed < cap:
            time.sleep(0.05)
        finished = results.scard(key)
        elapsed = time.monotonic() - killed
    finally:
        for worker in workers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        results.delete(key, queue)

    recovered = finished == tasks
    outcome = f"{elapsed:.1f} s" if recovered else f"not within {cap:g} s ({tasks - finished} of {tasks} tasks not run)"
    print(
        f"Celery alone (acks_late, Redis, default visibility timeout): {tasks} tasks, {done_at_kill} done at the "
        f"kill; the killed worker's tasks ran again: {outcome}"
    )
    result = {"tasks": tasks, "cap": cap, "finished": finished, "recovered": recovered, "seconds": elapsed}
    save("celery_alone", result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="wait 15 s instead of 60 s")
    main(parser.parse_args().quick)
