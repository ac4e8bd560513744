"""A fresh clone: plain `dbt build` (no PUSHER_AS_OF) then `pusher sync --dry-run` succeed on the
demo seeds on any date, because as_of defaults to the demo world's anchor in seeds mode; any other
source data keeps the warehouse's clock, so its freshness checks stay real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import DBT, DEMO_AS_OF, REPO, run_dbt

PUSHER = Path(sys.executable).parent / "pusher"


def compiled_as_of(workdir: Path, source_data: str) -> str:
    """The SQL that as_of() compiles to, with PUSHER_AS_OF unset."""
    env = {key: value for key, value in os.environ.items() if key != "PUSHER_AS_OF"}
    env.update({"PUSHER_SOURCE_DATA": source_data, "PUSHER_DUCKDB_PATH": str(workdir / "compile.duckdb"),
                "DBT_LOG_PATH": str(workdir / "logs"), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"})
    completed = subprocess.run(
        [str(DBT), "compile", "--quiet", "--inline", "select {{ as_of() }} as as_of",
         "--profiles-dir", str(REPO), "--project-dir", str(REPO),
         "--target-path", str(workdir / f"target-{source_data}")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return completed.stdout


def test_as_of_defaults_to_the_demo_anchor_only_for_the_seeds(tmp_path):
    assert f"cast('{DEMO_AS_OF}' as timestamp)" in compiled_as_of(tmp_path, "seeds")
    real = compiled_as_of(tmp_path, "parquet")
    assert DEMO_AS_OF not in real and "current_timestamp" in real


def test_plain_dbt_build_then_pusher_dry_run_pass_without_as_of(tmp_path):
    database = tmp_path / "fresh.duckdb"
    build = run_dbt(tmp_path, "build", database=database, as_of="")
    assert build.completed.returncode == 0, build.output()
    assert build.not_passing() == [], build.output()

    env = {key: value for key, value in os.environ.items()
           if key != "PUSHER_AS_OF" and not key.startswith(("CUSTOMERIO_", "MSADS_"))}
    env.update({"PUSHER_DUCKDB_PATH": str(database), "DBT_TARGET_PATH": str(tmp_path / "target"),
                "PUSHER_FILE_DIR": str(tmp_path / "files")})
    completed = subprocess.run([str(PUSHER), "sync", "--dry-run", "--json"], cwd=REPO, env=env,
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    report = json.loads(completed.stdout)
    assert report["syncs"], report
    assert all(not item.get("stopped_by") for item in report["syncs"]), report
