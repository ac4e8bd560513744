"""Typer commands only; the logic lives in modules named for their concept.

Exit codes (the highest code among the selected syncs wins; 1 outranks all):
  0  success: every destination equals its model
  3  some rows were rejected by a destination (retried next run, or exhausted: see status)
  4  a guard stopped a sync (remove_share, failed_tests, stale_sources); --override GUARD goes past
     one guard, --force past all
  5  configuration or input error (sync definition, profile, malformed rows); nothing sent for that sync
  6  destination unreachable (after retries); acknowledged batches are kept, rerun later
  7  `pusher status --check` only: a sync has not succeeded within twice its cadence
  1  unexpected error (a bug)
  130 interrupted (Ctrl-C): acknowledged batches are kept, rerun to continue
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional

import typer

from pusher.emulators.cli import app as emulate_app
from pusher.errors import PusherError, redact, storage_error

EXIT_CODES_HELP = ("Exit codes: 0 success · 3 rows rejected · 4 guard stopped · 5 config/input error · "
                   "6 destination unreachable · 1 unexpected error · 7 late for its cadence (status --check). "
                   "With several syncs, the highest wins.")

app = typer.Typer(help="Keep marketing destinations exactly in step with warehouse audiences.\n\n" + EXIT_CODES_HELP,
                  no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(emulate_app, name="emulate")

SELECT = typer.Option(None, "--select", "-s", help="Sync (exposure) or model name; repeatable. Default: all syncs.")
PROJECT_DIR = typer.Option(Path("."), "--project-dir", envvar="DBT_PROJECT_DIR", help="The dbt project directory.")
PROFILES_DIR = typer.Option(None, "--profiles-dir", envvar="DBT_PROFILES_DIR",
                            help="Directory of profiles.yml (default: the project directory).")
TARGET = typer.Option(None, "--target", "-t", help="dbt target (default: DBT_TARGET or the profile's default).")
TARGET_PATH = typer.Option(None, "--target-path", envvar="DBT_TARGET_PATH",
                           help="dbt's target directory holding manifest.json (default: <project>/target).")
JSON_OUT = typer.Option(False, "--json", help="Print one JSON document on stdout (logs and progress go to stderr).")
VERBOSE = typer.Option(False, "--verbose", "-v", help="Also show sample rows (emails and phones masked) and details.")


EXIT_INTERRUPTED = 130   # 128 + SIGINT, as shells report it
INTERRUPTED = "interrupted; acknowledged batches are kept, rerun to continue"


def _interrupted(exc: BaseException) -> bool:
    """Ctrl-C: Python's KeyboardInterrupt, or DuckDB's when it lands inside a query."""
    if isinstance(exc, KeyboardInterrupt):
        return True
    import duckdb

    return isinstance(exc, duckdb.InterruptException)


@contextmanager
def _ctrl_c_stops_after_the_batch() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt as usual and also sets a flag the engine checks after each
    recorded batch: DuckDB can swallow the KeyboardInterrupt of a signal that lands inside a query."""
    import signal

    from pusher.sync import INTERRUPT_REQUESTED

    def on_sigint(signum, frame):
        INTERRUPT_REQUESTED.set()
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGINT, on_sigint)
    except ValueError:          # not the main thread (an embedding program): keep its handler
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        INTERRUPT_REQUESTED.clear()


def main() -> None:
    """The `pusher` command. A command that ends normally (its exit code in hand) ends the process
    at once: by then every file and connection it opened is closed (the warehouse and its state
    file in _session, the destinations' clients in Engine.close) and its worker threads joined, so
    interpreter teardown would only free objects one by one and unload modules (0.2-0.3 s after a
    first sync of 100k members on a busy machine), writing nothing. Threads that are not daemons
    are still waited for, atexit handlers still run and stdout/stderr are flushed. An unexpected
    exception (a traceback) takes the ordinary way out."""
    # httpx imports its own command-line client (rich's syntax highlighting, pygments, click)
    # whenever those happen to be installed; pusher never runs it, and it costs every command
    # about 50 ms of start-up. httpx falls back to a stub when that import fails.
    sys.modules.setdefault("httpx._main", None)
    try:
        app(prog_name="pusher")
        code: Any = 0
    except SystemExit as exc:
        code = exc.code
    _exit_now(code)


def _exit_now(code: Any) -> None:
    if code is None:
        code = 0
    elif not isinstance(code, int):     # sys.exit("message"): Python prints it and exits 1
        print(code, file=sys.stderr)
        code = 1
    import atexit
    import threading

    # What interpreter exit does first, in its order: wake the idle workers of thread pools left
    # open (threading's own exit hooks), then wait for every non-daemon thread; then atexit.
    threading._shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):   # a closed pipe or stream: nothing more can reach it
            pass
    os._exit(code)


def _err(text: str) -> None:
    typer.echo(text, err=True)


@contextmanager
def _session(project_dir: Path, profiles_dir: Optional[Path], target: Optional[str],
             target_path: Optional[Path], as_json: bool,
             on_error: Optional[Callable[[PusherError], None]] = None,
             select: Optional[List[str]] = None,
             before_connect: Optional[Callable[[Any], None]] = None) -> Iterator[tuple[Any, Any]]:
    """Load the sync definitions and open the warehouse (on another engine than DuckDB, a copy of
    what the `select`ed syncs read); turn a PusherError into its exit code. `before_connect(project)`
    runs in between."""
    from pusher.config import load_project
    from pusher.warehouse import Warehouse, load_profile

    wh = None
    try:
        project = load_project(project_dir, target_path)
        for warning in project.warnings:
            _err(f"warning: {warning}")
        if before_connect:
            before_connect(project)
        wh = Warehouse.connect(load_profile(project_dir, profiles_dir, target), project=project, select=select)
        for notice in wh.notices:
            _err(notice)
        yield project, wh
    except PusherError as exc:
        if as_json:
            typer.echo(json.dumps({"error": str(exc), "exit_code": exc.exit_code}))
        _err(f"error: {exc}")
        if on_error:
            on_error(exc)
        raise typer.Exit(exc.exit_code)
    except BaseException as exc:
        storage = storage_error(exc)
        if storage is not None:
            if as_json:
                typer.echo(json.dumps({"error": str(storage), "exit_code": storage.exit_code}))
            _err(f"error: {storage}")
            raise typer.Exit(storage.exit_code) from None
        if not _interrupted(exc):
            raise
        if as_json:
            typer.echo(json.dumps({"error": "interrupted", "exit_code": EXIT_INTERRUPTED}))
        _err(INTERRUPTED)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    finally:
        if wh is not None:
            wh.close()


def _progress() -> tuple[Optional[Callable[[str, int, int], None]], Any]:
    """The engine's progress callback and the context that shows it: one rich progress bar per
    sync on stderr when stderr is a terminal; otherwise none, and rich is not even imported (a
    CI log gets the report alone)."""
    if not sys.stderr.isatty():
        return None, nullcontext()
    bar = _Bar()
    return bar, bar.progress


class _Bar:
    """One rich progress bar per sync, on stderr."""

    def __init__(self):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeRemainingColumn(), console=Console(stderr=True), transient=False)
        self.tasks: dict[str, Any] = {}

    def __call__(self, sync: str, done: int, total: int) -> None:
        if sync not in self.tasks:
            self.tasks[sync] = self.progress.add_task(sync, total=total)
        self.progress.update(self.tasks[sync], completed=done)


def _add_broken(report, project, select) -> None:
    """Malformed syncs the selection names: each is a config error of its own (exit 5); every
    other sync has run."""
    from pusher.errors import EXIT_CONFIG_ERROR
    from pusher.sync import SyncOutcome

    report.outcomes += [SyncOutcome(name, "config_error", exit_code=EXIT_CONFIG_ERROR, message=error)
                        for name, error in project.broken_in(select).items()]


def _print_report(report, as_json: bool, verbose: bool = False, where_now: Optional[dict] = None) -> None:
    from pusher.pii import mask

    if as_json:
        document = report.to_dict()
        for outcome in document["syncs"]:   # sample rows carry people's emails: masked, as on the terminal
            if (outcome.get("plan") or {}).get("samples"):
                outcome["plan"] = {**outcome["plan"], "samples": mask(outcome["plan"]["samples"])}
        if where_now is not None:
            document["only"] = where_now
        typer.echo(redact(json.dumps(document, default=str, indent=2)))
        return
    from pusher.tables import print_run, print_where_now

    print_run(report, verbose)
    if where_now is not None:
        print_where_now(where_now)


def _engine(project, wh, **kwargs):
    from pusher.sync import Engine

    return Engine(project, wh, **kwargs)


@app.command()
def plan(select: Optional[List[str]] = SELECT, project_dir: Path = PROJECT_DIR,
         profiles_dir: Optional[Path] = PROFILES_DIR, target: Optional[str] = TARGET,
         target_path: Optional[Path] = TARGET_PATH, as_json: bool = JSON_OUT, verbose: bool = VERBOSE) -> None:
    """Show per sync the adds, removes, attribute updates, samples and cost; sends nothing."""
    with _session(project_dir, profiles_dir, target, target_path, as_json, select=select) as (project, wh):
        syncs = project.select(select)
        engine = _engine(project, wh)
        report = engine.plan_all(syncs)
        _add_broken(report, project, select)
    _print_report(report, as_json, verbose)
    raise typer.Exit(report.exit_code)


@app.command()
def sync(select: Optional[List[str]] = SELECT, dry_run: bool = typer.Option(False, "--dry-run",
         help="Plan and check guards only; send nothing."),
         override: Optional[List[str]] = typer.Option(
             None, "--override", metavar="GUARD", help="Go past one guard (remove_share, failed_tests or "
             "stale_sources) after you have checked why it stopped the run. Repeatable."),
         force: bool = typer.Option(False, "--force", help="Go past every guard (as --override for each)."),
         only_keys: Optional[str] = typer.Option(
             None, "--only", metavar="IDS", help="Controlled test sync: send only these customers' changes "
             "(comma-separated customer ids), then show what each of them is in at every destination."),
         due: bool = typer.Option(False, "--due", help="Only the syncs whose cadence (meta.pusher.cadence) has "
                                  "elapsed since their last success; syncs without a cadence always run."),
         project_dir: Path = PROJECT_DIR, profiles_dir: Optional[Path] = PROFILES_DIR,
         target: Optional[str] = TARGET, target_path: Optional[Path] = TARGET_PATH,
         as_json: bool = JSON_OUT, verbose: bool = VERBOSE) -> None:
    """Make each destination equal to its model: removes first, then adds/updates, batch by batch."""
    from pusher import alerts, only
    from pusher.destinations import registry
    from pusher.look_ahead import LookAhead, start_for_first_run
    from pusher.state import state_path

    def alert_failure(exc: BaseException) -> None:
        if not dry_run:
            alerts.notify_failure(str(exc) if isinstance(exc, PusherError) else type(exc).__name__,
                                  getattr(exc, "exit_code", 1), os.environ, log=_err)

    look_ahead = LookAhead(lambda kind: registry.build(kind, os.environ, project_dir))

    def look_ahead_on_a_first_run(project) -> None:
        if not dry_run:
            start_for_first_run(look_ahead, project.select(select), state_path(project.project_dir))

    with _ctrl_c_stops_after_the_batch(), look_ahead_closed(look_ahead), \
            _session(project_dir, profiles_dir, target, target_path, as_json, on_error=alert_failure,
                     select=select, before_connect=look_ahead_on_a_first_run) as (project, wh):
        alerts.Thresholds.from_env(os.environ)   # a bad setting stops before anything is sent
        alerts.webhooks(os.environ)              # registers the webhook URLs as secrets
        syncs = project.select(select)
        if due:
            syncs = _due_only(wh, syncs, as_json)
        bar, showing = _progress()
        keys = only.parse_keys(only_keys) if only_keys is not None else ()
        engine = _engine(project, wh, force=force, overrides=override or (), dry_run=dry_run, progress=bar,
                         only=keys, look_ahead=look_ahead)
        where_now = None
        try:
            with showing:
                report = engine.sync_all(syncs)
            _add_broken(report, project, select)
            if keys:
                try:
                    where_now = only.where_now(wh, syncs, keys, engine.destination)
                except PusherError as exc:   # the sync itself is done and recorded
                    _err(f"warning: could not read back where {', '.join(keys)} are now: {exc}")
        except Exception as exc:
            if not isinstance(exc, PusherError):
                alert_failure(exc)
            raise
        finally:
            if keys:
                only.drop_views(wh, syncs)
            engine.close()
        if not dry_run:
            alerts.notify(report, project, wh, syncs, os.environ, log=_err)
    _print_report(report, as_json, verbose, where_now)
    raise typer.Exit(report.exit_code)


@contextmanager
def look_ahead_closed(look_ahead) -> Iterator[None]:
    try:
        yield
    finally:
        look_ahead.close()


def _due_only(wh, syncs, as_json: bool):
    """The syncs whose cadence has elapsed; the others are named on stderr, and the run ends if none is due."""
    from pusher import cadence
    from pusher.ledger import Ledger, utcnow

    Ledger(wh).ensure()
    last, now = cadence.last_successes(wh, syncs), utcnow()
    chosen = [sync for sync in syncs if cadence.is_due(sync.cadence_seconds, last[sync.name], now)]
    for sync in syncs:
        if sync not in chosen:
            _err(f"{sync.name}: not due (cadence {sync.cadence}, next in "
                 f"{cadence.describe(max(60, cadence.next_due_in(sync.cadence_seconds, last[sync.name], now)))})")
    if not chosen:
        if as_json:
            typer.echo(json.dumps({"run_id": None, "command": "sync --due", "exit_code": 0, "syncs": []}))
        _err("no sync is due")
        raise typer.Exit(0)
    return chosen


@app.command()
def status(select: Optional[List[str]] = SELECT, project_dir: Path = PROJECT_DIR,
           profiles_dir: Optional[Path] = PROFILES_DIR, target: Optional[str] = TARGET,
           target_path: Optional[Path] = TARGET_PATH, as_json: bool = JSON_OUT, verbose: bool = VERBOSE,
           check: bool = typer.Option(False, "--check", help="Exit 7 when any sync has not succeeded within twice its "
                                      "cadence (for cron or CI health checks).")) -> None:
    """Per sync: last successful sync, audience and destination size, rejected rows, freshness."""
    from pusher import status as status_module
    from pusher.errors import EXIT_OK, EXIT_ROWS_REJECTED, EXIT_SYNC_LATE
    from pusher.tables import print_status

    with _session(project_dir, profiles_dir, target, target_path, as_json, select=select) as (project, wh):
        rows = status_module.status(project, wh, project.select(select))
    if as_json:
        typer.echo(redact(json.dumps({"syncs": rows}, default=str, indent=2)))
    else:
        print_status(rows, verbose)
    late = [row["sync"] for row in rows if row["late"]]
    if check and late:
        _err(f"late for their cadence: {', '.join(late)}")
        raise typer.Exit(EXIT_SYNC_LATE)
    raise typer.Exit(EXIT_ROWS_REJECTED if any(r["rejected_exhausted"] for r in rows) else EXIT_OK)


@app.command()
def retry(sync_name: str = typer.Argument(..., metavar="SYNC", help="The sync (exposure) whose exhausted rows to retry."),
          key: Optional[str] = typer.Option(None, "--key", help="Only this member/event key (customer_id, event_id)."),
          project_dir: Path = PROJECT_DIR, profiles_dir: Optional[Path] = PROFILES_DIR, target: Optional[str] = TARGET,
          target_path: Optional[Path] = TARGET_PATH, as_json: bool = JSON_OUT) -> None:
    """Reset rows rejected max_row_attempts times, so the next `pusher sync` sends them again."""
    from pusher.ledger import Ledger

    with _session(project_dir, profiles_dir, target, target_path, as_json, select=[sync_name]) as (project, wh):
        [sync_definition] = [s for s in project.select([sync_name]) if s.name == sync_name] or [None]
        if sync_definition is None:
            from pusher.errors import ConfigError
            raise ConfigError(f"{sync_name} is a model, not a sync; name the sync (exposure)")
        ledger = Ledger(wh)
        ledger.ensure()
        count = ledger.reset_exhausted(sync_name, sync_definition.max_row_attempts, key)
    if as_json:
        typer.echo(json.dumps({"sync": sync_name, "key": key, "reset": count}))
    else:
        which = f" for key {key}" if key is not None else ""
        typer.echo(f"{sync_name}: reset {count} exhausted row(s){which}; "
                   + (f"the next `pusher sync --select {sync_name}` sends them again" if count else "nothing to retry"))


@app.command()
def reset(sync_name: str = typer.Argument(..., metavar="SYNC", help="The audience sync whose list to rebuild."),
          project_dir: Path = PROJECT_DIR, profiles_dir: Optional[Path] = PROFILES_DIR, target: Optional[str] = TARGET,
          target_path: Optional[Path] = TARGET_PATH, as_json: bool = JSON_OUT) -> None:
    """Forget what the ledger holds for one sync (e.g. its list was deleted at the destination):
    the next `pusher sync` finds or creates the list and fills it, guarded like a first sync."""
    from pusher.errors import ConfigError
    from pusher.ledger import Ledger

    with _session(project_dir, profiles_dir, target, target_path, as_json, select=[sync_name]) as (project, wh):
        if sync_name not in [s.name for s in project.select([sync_name])]:
            raise ConfigError(f"{sync_name} is a model, not a sync; name the sync (exposure)")
        ledger = Ledger(wh)
        ledger.ensure()
        count = ledger.forget_sync(sync_name)
    if as_json:
        typer.echo(json.dumps({"sync": sync_name, "forgotten": count}))
    else:
        typer.echo(f"{sync_name}: forgot {count} acknowledged member(s) and the remembered list id; the next "
                   f"`pusher sync --select {sync_name}` finds or recreates the list and fills it")


@app.command()
def report(select: Optional[List[str]] = SELECT,
           out: Path = typer.Option(Path("pusher-report.html"), "--out", "-o", help="The HTML file to write."),
           project_dir: Path = PROJECT_DIR, profiles_dir: Optional[Path] = PROFILES_DIR,
           target: Optional[str] = TARGET, target_path: Optional[Path] = TARGET_PATH) -> None:
    """One self-contained HTML file: per sync, sizes over time, adds/removes and rejections per run,
    the Microsoft 300-member minimum; freshness per source. Sends nothing."""
    from pusher import report as report_module

    with _session(project_dir, profiles_dir, target, target_path, False, select=select) as (project, wh):
        size = report_module.write(project, wh, project.select(select), out)
    _err(f"wrote {out} ({size // 1024} KB); open it in any browser")


@app.command()
def history(limit: int = typer.Option(20, help="How many runs to show."),
            run: Optional[str] = typer.Option(None, "--run", help="One run id: show its batches."),
            project_dir: Path = PROJECT_DIR, profiles_dir: Optional[Path] = PROFILES_DIR,
            target: Optional[str] = TARGET, target_path: Optional[Path] = TARGET_PATH,
            as_json: bool = JSON_OUT) -> None:
    """Past runs, their syncs and (with --run) their batches."""
    from pusher import status as status_module

    with _session(project_dir, profiles_dir, target, target_path, as_json) as (project, wh):
        runs = status_module.history(wh, limit, run)
    if as_json:
        typer.echo(redact(json.dumps({"runs": runs}, default=str, indent=2)))
        return
    for entry in runs:
        typer.echo(f"{entry['run_id']} {entry['command']} {entry['status']} exit={entry['exit_code']} "
                   f"started {entry['started_at']}")
        for s in entry["syncs"]:
            typer.echo(f"    {s['sync']}: {s['status']} +{s['adds']} -{s['removes']} ~{s['updates']} "
                       f"events {s['events']} rejected {s['rejected']}")
        for b in entry["batches"] if isinstance(entry["batches"], list) else []:
            typer.echo(f"    batch {b['sync']} #{b['batch_no']} {b['op']}: {b['accepted']}/{b['rows']} accepted, "
                       f"{b['rejected']} rejected at {b['at']}")
