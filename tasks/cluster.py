"""Real `celery -A tasks` worker and beat processes on this machine, for the end-to-end tests and the demo."""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from coordinator import FileState, WorkerCoordinator

SAMPLE_SIZES = (0, 1, 100, 4096, 70_000, 300_000)
# The brokers the tests and benchmarks use on this machine; None is the embedded default (filesystem).
LOCAL_BROKERS = {
    "filesystem": None,
    "redis": "redis://127.0.0.1:6379/0",
    "amqp": "amqp://guest:guest@127.0.0.1:5672//",
}
BROKER_PORTS = {"redis": 6379, "amqp": 5672}
# A PostgreSQL database the tests and benchmarks may make throw-away schemas in: this machine's by default.
LOCAL_POSTGRES = os.environ.get("COORDINATOR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@contextlib.contextmanager
def postgres_schema(database: str = LOCAL_POSTGRES) -> Iterator[str]:
    """A URL whose tables land in a new, empty schema of database; the schema is dropped afterwards."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(database, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE SCHEMA "{name}"')
    separator = "&" if "?" in database else "?"
    try:
        yield f"{database}{separator}options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(database, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP SCHEMA "{name}" CASCADE')


class LocalCluster:
    """Starts workers and beat as subprocesses, each in a process group of its own, and kills them all on stop."""

    def __init__(
        self,
        home: Path,
        *,
        broker_url: str | None = None,
        heartbeat_timeout: float = 2.0,
        heartbeat_interval: float = 0.5,
        reap_interval: float = 0.5,
        concurrency: int = 2,
        env: dict[str, str] | None = None,
    ) -> None:
        self.home = Path(home).absolute()
        self.source_dir = self.home / "source"
        self.cache_dir = self.home / "cache"
        self.logs = self.home / "logs"
        self.concurrency = concurrency
        self.heartbeat_timeout = heartbeat_timeout
        for folder in (self.source_dir, self.cache_dir, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
        # Settings inherited from the caller's environment would override the ones given here.
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("COORDINATOR_", "CELERY_"))}
        self.env = {
            **inherited,
            "COORDINATOR_HOME": str(self.home),
            "COORDINATOR_SOURCE_DIR": str(self.source_dir),
            "COORDINATOR_CACHE_DIR": str(self.cache_dir),
            "COORDINATOR_HEARTBEAT_TIMEOUT": str(heartbeat_timeout),
            "COORDINATOR_HEARTBEAT_INTERVAL": str(heartbeat_interval),
            "COORDINATOR_REAP_INTERVAL": str(reap_interval),
            **(env or {}),
        }
        if broker_url:
            self.env["CELERY_BROKER_URL"] = broker_url
        self.db_path = self.env.setdefault("COORDINATOR_DB", str(self.home / "state.db"))
        self.coordinator = WorkerCoordinator(self.db_path, heartbeat_timeout)
        self.processes: dict[str, subprocess.Popen] = {}  # the latest process of each name
        self._started: list[subprocess.Popen] = []
        self.host = socket.gethostname()

    def node(self, name: str) -> str:
        """The Celery node name, and so the coordinator's worker id, of the worker called name."""
        return f"{name}@{self.host}"

    def _spawn(self, name: str, *arguments: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it from here
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tasks", *arguments],
            cwd=self.home,
            env={**self.env, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        self.processes[name] = process
        self._started.append(process)
        return process

    def start_worker(self, name: str, *, wait: float = 30.0, env: dict[str, str] | None = None) -> str:
        """Start a worker (env overrides settings) and wait until it has registered; returns its worker id."""
        started = time.time()
        node = self.node(name)
        self._spawn(
            name,
            "worker",
            "-n",
            node,
            "-c",
            str(self.concurrency),
            "-l",
            "info",
            "--without-mingle",
            "--without-gossip",
            env=env,
        )

        def registered() -> bool:
            workers = {w.worker_id: w for w in self.coordinator.list_workers()}
            return node in workers and workers[node].registered_at >= started

        self.wait_until(registered, wait, f"worker {node} to register", watch=name)
        return node

    def start_beat(self, *, env: dict[str, str] | None = None) -> None:
        """Start celery beat, which schedules reap_dead_workers (env overrides settings)."""
        self._spawn("beat", "beat", "-s", str(self.home / "beat-schedule"), "-l", "info", env=env)

    def make_sample_files(self, count: int, *, prefix: str = "batch/file-", seed: int = 7) -> dict[str, str]:
        """Write count source files of mixed sizes; returns their sha256 by file id."""
        rng = random.Random(seed)
        files = {}
        for i in range(count):
            file_id = f"{prefix}{i:04}.bin"
            data = rng.randbytes(rng.choice(SAMPLE_SIZES))
            path = self.source_dir / file_id
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            files[file_id] = hashlib.sha256(data).hexdigest()
        return files

    def all_cached_on(self, file_ids: Iterable[str], worker_ids: set[str]) -> bool:
        """Whether every file is cached by one of worker_ids, by the state."""
        for file_id in file_ids:
            record = self.coordinator.get_file(file_id)
            if record.state is not FileState.CACHED or record.worker_id not in worker_ids:
                return False
        return True

    def cached_intact(self, file_id: str, sha256: str, worker_ids: set[str]) -> bool:
        """Whether one of worker_ids has the file cached with the source's bytes, in the state and on disk."""
        record = self.coordinator.get_file(file_id)
        path = self.cache_dir / str(record.worker_id) / file_id
        return (
            record.state is FileState.CACHED
            and record.worker_id in worker_ids
            and record.sha256 == sha256
            and path.is_file()
            and hashlib.sha256(path.read_bytes()).hexdigest() == sha256
        )

    def busiest(self, names: Iterable[str]) -> str:
        """The name of the worker among names that owns the most files."""
        return max(names, key=lambda n: len(self.coordinator.get_worker_assignments(self.node(n))))

    def assign(self, file_ids: Iterable[str]) -> None:
        """Enqueue the files through tasks.assign, from a separate process as a user's script would."""
        assigner = self.start_assigner()
        assigner.stdin.write("".join(f"{file_id}\n" for file_id in file_ids))
        assigner.stdin.close()
        if assigner.wait(300) != 0:
            raise RuntimeError(f"assigning failed:\n{self.log('assigner')[-3000:]}")

    def start_assigner(self) -> subprocess.Popen:
        """A process that assigns, through tasks.assign, each file id written to its stdin (one per line)."""
        script = "import sys, tasks\nfor line in sys.stdin:\n    tasks.assign(line.strip())\n"
        log = open(self.logs / "assigner.log", "ab")  # noqa: SIM115 - the child owns it from here
        process = subprocess.Popen(
            [sys.executable, "-c", script],
            cwd=self.home,
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        log.close()
        self._started.append(process)
        return process

    def signal(self, name: str, signum: int, *, group: bool = True) -> None:
        """Send signum to the process (group=False) or to its whole process group, pool children included."""
        process = self.processes[name]
        if group:
            os.killpg(process.pid, signum)
        else:
            process.send_signal(signum)

    def alive(self, name: str) -> bool:
        """Whether the main process of name still runs."""
        return self.processes[name].poll() is None

    def wait_until(
        self, condition: Callable[[], bool], timeout: float, what: str, *, watch: str | None = None
    ) -> float:
        """Poll condition until it holds; returns the seconds it took, or raises TimeoutError naming what."""
        started = time.monotonic()
        while not condition():
            if watch is not None and not self.alive(watch):
                raise RuntimeError(f"{watch} exited while waiting for {what}:\n{self.log(watch)[-3000:]}")
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"waited {timeout:g} s for {what}")
            time.sleep(0.05)
        return time.monotonic() - started

    def log(self, name: str) -> str:
        """What the process called name has printed so far."""
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def stop(self) -> None:
        """SIGKILL every process group started here and reap them."""
        for process in self._started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        for process in self._started:
            process.wait(timeout=30)
