"""The `coordinator` command: look at the state, enqueue, reap and retire by hand, export metrics, run the demo."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

import click

from coordinator import CoordinatorError, FileState, WorkerCoordinator, WorkerStatus
from coordinator.store import is_postgres


class State:
    """What every command needs: the Celery app with its settings, and the state file (--db overrides it)."""

    def __init__(self, db: str | None) -> None:
        from tasks import app  # loads celeryconfig, which reads the environment

        self.app = app
        if db is not None:
            app.conf.coordinator_db = db if is_postgres(db) else str(Path(db).absolute())
        self.db = app.conf.coordinator_db

    def coordinator(self) -> WorkerCoordinator:
        """The state, which must exist already: reading commands never create a state file."""
        if not is_postgres(self.db) and not Path(self.db).exists():
            raise click.ClickException(f"no state database at {self.db} yet: start a worker or assign files first")
        from tasks.state import coordinator_of

        return coordinator_of(self.app)


pass_state = click.make_pass_decorator(State)


@click.group()
@click.option("--db", help="The state file or postgresql:// URL (default: COORDINATOR_DB).")
@click.pass_context
def cli(ctx: click.Context, db: str | None) -> None:
    """Dead-worker recovery for Celery: look at and steer the coordinator's state."""
    ctx.obj = State(db)


def status_document(coordinator: WorkerCoordinator) -> dict:
    """Workers with their heartbeat age and file counts, and files by state, as one JSON-ready document."""
    now = time.time()
    counts = coordinator.count_files()
    workers = []
    for worker in coordinator.list_workers():
        owned = [c for c in counts if c.worker_id == worker.worker_id]
        workers.append(
            {
                "worker_id": worker.worker_id,
                "status": worker.status.value,
                "incarnation": worker.incarnation,
                "heartbeat_age": round(now - worker.last_heartbeat, 3),
                "files": sum(c.files for c in owned),
                "cached": sum(c.files for c in owned if c.state is FileState.CACHED),
            }
        )
    files = {state.value: sum(c.files for c in counts if c.state is state) for state in FileState}
    return {"heartbeat_timeout": coordinator.heartbeat_timeout, "workers": workers, "files": files}


def render_status(document: dict) -> str:
    lines = [f"{'worker':<32} {'status':<8} {'inc':>4} {'heartbeat':>10} {'files':>7} {'cached':>7}"]
    for w in document["workers"]:
        age = f"{w['heartbeat_age']:.1f}s ago" if w["status"] != WorkerStatus.RETIRED.value else "-"
        lines.append(
            f"{w['worker_id']:<32} {w['status']:<8} {w['incarnation']:>4} {age:>10} {w['files']:>7} {w['cached']:>7}"
        )
    if not document["workers"]:
        lines.append("(no workers registered)")
    totals = ", ".join(f"{state} {count}" for state, count in document["files"].items())
    lines.append(f"files: {totals} (total {sum(document['files'].values())})")
    return "\n".join(lines)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document, for scripts.")
@click.option("--watch", is_flag=True, help="Refresh every second until interrupted.")
@pass_state
def status(state: State, as_json: bool, watch: bool) -> None:
    """Workers (status, incarnation, heartbeat age, files) and the files by state."""
    coordinator = state.coordinator()
    while True:
        document = status_document(coordinator)
        text = json.dumps(document) if as_json else render_status(document)
        if watch:
            click.clear()
        click.echo(text)
        if not watch:
            return
        try:
            time.sleep(1)
        except KeyboardInterrupt:
            return


@cli.command()
@click.option("--worker", help="Only the files this worker owns.")
@click.option(
    "--state", "file_state", type=click.Choice([s.value for s in FileState]), help="Only files in this state."
)
@click.option("--json", "as_json", is_flag=True, help="A JSON list, for scripts.")
@pass_state
def files(state: State, worker: str | None, file_state: str | None, as_json: bool) -> None:
    """The assignments: owner, state, epoch, size and last error of each file."""
    records = state.coordinator().list_files(worker_id=worker, state=file_state)
    if as_json:
        click.echo(json.dumps([{**asdict(r), "state": r.state.value} for r in records]))
        return
    click.echo(f"{'file':<40} {'owner':<32} {'state':<9} {'epoch':>5} {'size':>10}  error")
    for r in records:
        size = "" if r.size is None else str(r.size)
        click.echo(
            f"{r.file_id:<40} {r.worker_id or '-':<32} {r.state.value:<9} {r.epoch:>5} {size:>10}  {r.error or ''}"
        )


@cli.command()
@click.argument("file_ids", nargs=-1)
@click.option("--worker", help="Give every file to this worker (default: the least-loaded live worker).")
@click.option(
    "--from-dir",
    type=click.Path(exists=True, file_okay=False),
    help="Also assign every file under this folder (inside the source folder).",
)
@pass_state
def assign(state: State, file_ids: tuple[str, ...], worker: str | None, from_dir: str | None) -> None:
    """Assign files and send each its cache_file task, as tasks.assign does."""
    from tasks import assign as assign_file

    ids = list(file_ids)
    if from_dir is not None:
        source = Path(state.app.conf.coordinator_source_dir).resolve()
        folder = Path(from_dir).resolve()
        if not folder.is_relative_to(source):
            raise click.ClickException(f"{from_dir} is not inside the source folder {source}")
        ids += sorted(str(p.relative_to(source)) for p in folder.rglob("*") if p.is_file())
    if not ids:
        raise click.UsageError("name files to assign, or --from-dir")
    owners: dict[str | None, int] = {}
    with click.progressbar(ids, label="assigning", file=sys.stderr, hidden=len(ids) < 50) as bar:
        for file_id in bar:
            owner = assign_file(file_id, worker, app=state.app)
            owners[owner] = owners.get(owner, 0) + 1
    parts = [f"{owner}: {n}" for owner, n in sorted(owners.items(), key=lambda i: str(i[0])) if owner is not None]
    if None in owners:
        parts.append(f"parked until a worker is live: {owners[None]}")
    click.echo(f"assigned {len(ids)} files ({', '.join(parts)})")


def echo_moves(moves) -> None:
    for move in moves:
        click.echo(
            f"  {move.file_id}: {move.from_worker or '(parked)'} -> {move.to_worker or '(parked)'} "
            f"[{move.reason.value}, epoch {move.epoch}]"
        )


@cli.command()
@pass_state
def reap(state: State) -> None:
    """One reap by hand, as beat runs it: declare silent workers dead and move their files."""
    from tasks.reaper import reap_and_send

    state.coordinator()
    report, sent = reap_and_send(state.app)
    click.echo(f"declared dead: {', '.join(report.declared_dead) or 'none'}")
    click.echo(
        f"moved {len(report.moves) - len(report.parked)} files, parked {len(report.parked)}, "
        f"sent {sent} cache_file tasks"
    )
    echo_moves(report.moves)


@cli.command()
@click.argument("worker_id")
@pass_state
def retire(state: State, worker_id: str) -> None:
    """Take a worker out of service on purpose: its files move to live workers at once."""
    from tasks.reaper import retire_and_send

    state.coordinator().get_worker(worker_id)
    moves = retire_and_send(state.app, worker_id)
    click.echo(f"retired {worker_id}; moved {len(moves)} files")
    echo_moves(moves)


@cli.command()
@click.argument("file_ids", nargs=-1, required=True)
@pass_state
def release(state: State, file_ids: tuple[str, ...]) -> None:
    """Let quarantined files go: they are placed on live workers and cached again."""
    from tasks.reaper import reap_and_send

    coordinator = state.coordinator()
    for file_id in file_ids:
        coordinator.release(file_id)
    report, _ = reap_and_send(state.app)
    placed = {m.file_id: m.to_worker for m in report.moves}
    for file_id in file_ids:
        click.echo(f"released {file_id}: {placed.get(file_id) or 'parked until a worker is live'}")


@cli.command()
@click.option("--serve", "port", type=click.IntRange(1, 65535), help="Serve /metrics on 127.0.0.1:PORT.")
@pass_state
def metrics(state: State, port: int | None) -> None:
    """The state in Prometheus text format."""
    from prometheus_client import generate_latest, start_http_server

    from tasks.metrics import registry_for

    registry = registry_for(state.coordinator())
    if port is None:
        click.echo(generate_latest(registry).decode(), nl=False)
        return
    start_http_server(port, addr="127.0.0.1", registry=registry)
    click.echo(f"serving metrics on http://127.0.0.1:{port}/metrics; Ctrl-C stops", err=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return


@cli.command()
@click.option("--keep", is_flag=True, help="Leave the cluster running and say how to look at it.")
@click.option("--files", "count", type=click.IntRange(3, 100_000), default=300, show_default=True)
def demo(keep: bool, count: int) -> None:
    """Start 3 workers and beat, cache files, kill -9 a worker, and watch every file come back."""
    from tasks.demo import run_demo

    sys.exit(run_demo(keep=keep, count=count))


def main() -> None:
    """Entry point: errors are one line on stderr and a non-zero exit, never a traceback."""
    try:
        cli.main(prog_name="coordinator", standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as error:
        click.echo(f"coordinator: {error.format_message()}", err=True)
        sys.exit(error.exit_code)
    except CoordinatorError as error:
        click.echo(f"coordinator: {error}", err=True)
        sys.exit(1)
    except (click.exceptions.Abort, KeyboardInterrupt):
        sys.exit(130)
    except BrokenPipeError:
        os._exit(0)
