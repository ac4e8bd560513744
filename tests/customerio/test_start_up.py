"""What a `pusher` command imports: each module costs every command its start-up, and a first
sync of 100k members is about a second of sends. A real DuckDB warehouse and ledger, the CLI as
a process (`python -X importtime -m pusher`), the Customer.io emulator over real HTTP."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

from cio_sync_helpers import CioProject

# httpx imports its command-line client (rich's syntax highlighting, pygments, click) when those
# are installed; typer 0.29 coerces every parameter through pydantic; rich draws the progress bar,
# which a stderr that is not a terminal does not show. None of them is needed here.
NOT_NEEDED = ("rich", "pygments", "click", "pydantic")


def imported_modules(importtime_stderr: str) -> set[str]:
    """Module names from `-X importtime` lines: 'import time: self | cumulative | name'."""
    return {line.rsplit("|", 1)[1].strip() for line in importtime_stderr.splitlines()
            if line.startswith("import time:") and line.count("|") == 2}


def aud_project(tmp_path, emulator) -> CioProject:
    project = CioProject(tmp_path, emulator.url, {"sync_aud": (
        {"destination": "customerio", "kind": "audience", "list_name": "CIO__Start_Up"}, "aud")})
    project.sql("create table aud as select 'c' || cast(i as varchar) as customer_id, "
                "sha256('u' || cast(i as varchar)) as email_sha256, cast(null as varchar) as phone_sha256 "
                "from range(1500) t(i)")
    return project


def pusher_env(project: CioProject) -> dict[str, str]:
    env = {**os.environ, **project.env, "DBT_PROFILES_DIR": str(project.root)}
    for name in ("DBT_TARGET", "DBT_TARGET_PATH", "PUSHER_STATE_PATH"):
        env.pop(name, None)
    return env


def test_a_json_sync_off_a_terminal_imports_httpx_but_not_its_command_line_client_pydantic_or_rich(tmp_path, emulator):
    project = aud_project(tmp_path, emulator)
    env = pusher_env(project)
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "pusher", "sync", "--json",
                           "--project-dir", str(project.root)],
                          env=env, cwd=project.root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert emulator.count("POST /api/v1/segments/{segment_id}/add_customers", "200") == 2
    modules = imported_modules(done.stderr)
    assert {"httpx", "duckdb", "typer"} <= modules, "the importtime lines were read"
    assert not {name for name in modules if name.split(".")[0] in NOT_NEEDED}


def test_on_a_terminal_the_progress_bar_shows_each_sync(tmp_path, emulator):
    """stderr a pseudo-terminal: rich draws the bar, with the sync's name and count."""
    project = aud_project(tmp_path, emulator)
    main, terminal = pty.openpty()
    try:
        process = subprocess.Popen([sys.executable, "-m", "pusher", "sync", "--json", "--project-dir",
                                    str(project.root)], env={**pusher_env(project), "COLUMNS": "120", "TERM": "xterm"},
                                   cwd=project.root, stdout=subprocess.DEVNULL, stderr=terminal)
        os.close(terminal)
        drawn = b""
        while True:     # read as it is drawn: a full terminal buffer would block the process
            try:
                chunk = os.read(main, 65536)
            except OSError:         # the process closed its end: all was read
                break
            if not chunk:
                break
            drawn += chunk
        assert process.wait(timeout=300) == 0, drawn[-2000:]
    finally:
        os.close(main)
    assert b"sync_aud" in drawn and b"1500/1500" in drawn
