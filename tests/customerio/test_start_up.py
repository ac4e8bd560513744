"""What a `pusher` command imports: each module costs every command its start-up, and a first
sync of 100k members is about a second of sends. A real DuckDB warehouse and ledger, the CLI as
a process (`python -X importtime -m pusher`), the Customer.io emulator over real HTTP."""

from __future__ import annotations

import os
import subprocess
import sys

from cio_sync_helpers import CioProject

# httpx imports its command-line client (rich's syntax highlighting, pygments, click) when those
# are installed; typer 0.29 coerces every parameter through pydantic. Neither is used by pusher.
NOT_NEEDED = ("rich.syntax", "pygments", "click", "pydantic")


def imported_modules(importtime_stderr: str) -> set[str]:
    """Module names from `-X importtime` lines: 'import time: self | cumulative | name'."""
    return {line.rsplit("|", 1)[1].strip() for line in importtime_stderr.splitlines()
            if line.startswith("import time:") and line.count("|") == 2}


def test_a_sync_imports_httpx_but_neither_its_command_line_client_nor_pydantic(tmp_path, emulator):
    project = CioProject(tmp_path, emulator.url, {"sync_aud": (
        {"destination": "customerio", "kind": "audience", "list_name": "CIO__Start_Up"}, "aud")})
    project.sql("create table aud as select 'c' || cast(i as varchar) as customer_id, "
                "sha256('u' || cast(i as varchar)) as email_sha256, cast(null as varchar) as phone_sha256 "
                "from range(1500) t(i)")
    env = {**os.environ, **project.env, "DBT_PROFILES_DIR": str(project.root)}
    for name in ("DBT_TARGET", "DBT_TARGET_PATH", "PUSHER_STATE_PATH"):
        env.pop(name, None)
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "pusher", "sync", "--json",
                           "--project-dir", str(project.root)],
                          env=env, cwd=project.root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert emulator.count("POST /api/v1/segments/{segment_id}/add_customers", "200") == 2
    modules = imported_modules(done.stderr)
    assert {"httpx", "duckdb", "typer"} <= modules, "the importtime lines were read"
    assert not {name for name in modules if name in NOT_NEEDED or name.split(".")[0] in NOT_NEEDED}
