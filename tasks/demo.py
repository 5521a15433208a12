"""`coordinator demo`: 3 real workers and beat on the embedded default, a kill -9, and every file coming back."""

from __future__ import annotations

import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import click

from coordinator import FileState, WorkerStatus

from .cluster import LocalCluster

TIMEOUT, INTERVAL, REAP = 2.0, 0.5, 0.5
WORKERS = ("w1", "w2", "w3")


class Live:
    """One status line rewritten in place on a terminal; elsewhere printed only when it changes."""

    def __init__(self) -> None:
        self.tty = sys.stdout.isatty()
        self.last = ""

    def update(self, text: str) -> None:
        if self.tty:
            click.echo(f"\r\033[K{text}", nl=False)
        elif text != self.last:
            click.echo(text)
        self.last = text

    def done(self, text: str | None = None) -> None:
        if text is not None:
            self.update(text)
        if self.tty:
            click.echo()
        self.last = ""


def step(text: str) -> None:
    click.secho(f"==> {text}", bold=True)


def wait_caching(cluster: LocalCluster, files: dict[str, str], live: Live, limit: float = 120.0) -> None:
    started = time.monotonic()
    while True:
        cached = sum(1 for r in cluster.coordinator.list_files(state=FileState.CACHED) if r.file_id in files)
        live.update(f"    cached {cached}/{len(files)} ({time.monotonic() - started:.1f} s)")
        if cached == len(files):
            live.done()
            return
        if time.monotonic() - started > limit:
            raise click.ClickException(f"only {cached} of {len(files)} files cached after {limit:g} s")
        time.sleep(0.1 if live.tty else 0.5)


def watch_recovery(cluster: LocalCluster, victim: str, held: list[str], survivors: set[str]) -> tuple[float, float]:
    """Show the heartbeat going stale, the reap and the re-caching; returns (detect, recover) seconds."""
    live, killed, detected = Live(), time.monotonic(), None
    node = cluster.node(victim)
    while True:
        elapsed = time.monotonic() - killed
        worker = cluster.coordinator.get_worker(node)
        if detected is None and worker.status is WorkerStatus.DEAD:
            detected = elapsed
            moved: dict[str, int] = {}
            for file_id in held:
                owner = cluster.coordinator.get_file(file_id).worker_id
                moved[owner] = moved.get(owner, 0) + 1
            spread = ", ".join(f"{owner} +{n}" for owner, n in sorted(moved.items()))
            live.done(
                f"    {elapsed:4.1f} s  {node} declared dead by the reaper; its {len(held)} files moved: {spread}"
            )
        records = [cluster.coordinator.get_file(f) for f in held]
        recached = sum(1 for r in records if r.state is FileState.CACHED and r.worker_id in survivors)
        if detected is None:
            age = time.time() - worker.last_heartbeat
            live.update(f"    {elapsed:4.1f} s  last heartbeat of {node} {age:.1f} s ago (timeout {TIMEOUT:g} s)")
        else:
            live.update(f"    {elapsed:4.1f} s  re-cached {recached}/{len(held)} on the live workers")
            if recached == len(held):
                live.done()
                return detected, elapsed
        if elapsed > 60:
            raise click.ClickException(f"not recovered within 60 s ({recached}/{len(held)} re-cached)")
        time.sleep(0.1 if live.tty else 0.5)


def run_demo(*, keep: bool, count: int) -> int:
    """Run the demo; returns the exit status (0 when no file was lost)."""
    home = Path(tempfile.mkdtemp(prefix="coordinator-demo-"))
    cluster = LocalCluster(home, heartbeat_timeout=TIMEOUT, heartbeat_interval=INTERVAL, reap_interval=REAP)
    click.echo(f"home: {home}  (SQLite state + filesystem broker, no server)")
    click.echo(f"heartbeat every {INTERVAL:g} s, timeout {TIMEOUT:g} s, reap every {REAP:g} s")
    try:
        files = cluster.make_sample_files(count)
        total = sum((cluster.source_dir / f).stat().st_size for f in files)
        step(f"{count} sample files ({total / 1e6:.1f} MB); starting 3 workers and beat")
        for name in WORKERS:
            node = cluster.start_worker(name)
            click.echo(f"    {node} registered")
        cluster.start_beat()

        step(f"assigning {count} files with tasks.assign")
        cluster.assign(files)
        wait_caching(cluster, files, Live())
        for name in WORKERS:
            node = cluster.node(name)
            click.echo(f"    {node}: {len(cluster.coordinator.get_worker_assignments(node))} files")

        victim = cluster.busiest(WORKERS)
        node = cluster.node(victim)
        held = cluster.coordinator.get_worker_assignments(node)
        survivors = {cluster.node(n) for n in WORKERS if n != victim}
        step(f"kill -9 {node} (holding {len(held)} files)")
        cluster.signal(victim, signal.SIGKILL)
        detected, recovered = watch_recovery(cluster, victim, held, survivors)

        step("verifying every file: cached on a live worker, sha256 equal to the source")
        lost = sum(not cluster.cached_intact(f, sha256, survivors) for f, sha256 in files.items())
        click.echo(f"    files:                  {count}")
        click.echo(f"    worker killed:          {node} ({len(held)} files)")
        click.echo(f"    time to detect:         {detected:.1f} s")
        click.echo(f"    time to full recovery:  {recovered:.1f} s")
        click.secho(f"    files lost: {lost}", bold=True, fg="green" if lost == 0 else "red")
        return 0 if lost == 0 else 1
    finally:
        if keep:
            groups = " ".join(f"-{p.pid}" for p in cluster.processes.values() if p.poll() is None)
            click.echo("\nthe cluster keeps running; look at it with:")
            click.echo(f"    COORDINATOR_DB={cluster.db_path} .venv/bin/coordinator status --watch")
            click.echo(f"stop it with:\n    kill -9 -- {groups}; rm -r {home}")
        else:
            cluster.stop()
            shutil.rmtree(home, ignore_errors=True)
