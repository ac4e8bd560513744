"""The staging guard (tests/generic/holds_every_raw_export.sql) on real DuckDB builds of a copy of
the project: incremental staging reads only rows exported after the ones it holds, so a file
that arrives late with older export times would never be read, and a deleted file's rows would
stay. The demo world passes; a late file fails the guard until a build reads it with a lookback;
a raw export deleted after it was read fails it until a --full-refresh."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import copy_project, run_dbt

SEED = "seeds/store/raw_store__customers.csv"
GUARD = "holds_every_raw_export_stg_store__customers"
# exported at 06:00 on the 19th, a day before the exports the demo holds: a late file
LATE_ROW = "C9994,late.arrival@example.com,,Late,Arrival,US,true,2026-11-18 12:00:00,2026-11-18 12:00:00,2026-11-19 06:00:00"


def guard_failures(run) -> list[str]:
    return [failure for failure in run.not_passing() if "holds_every_raw_export" in failure]


@pytest.fixture
def project(tmp_path, demo_warehouse) -> tuple[Path, Path]:
    """A copy of the project and of the built demo warehouse."""
    project = tmp_path / "project"
    copy_project(project)
    database = tmp_path / "warehouse.duckdb"
    shutil.copy(demo_warehouse.database, database)
    return project, database


def build_staging(tmp_path: Path, project: Path, database: Path, *extra: str):
    """The customers seed, its staging model and that model's tests, as a scheduled build would."""
    return run_dbt(tmp_path, "build", "--select", "+stg_store__customers", *extra,
                   database=database, project=project)


def test_the_demo_world_passes_the_guard(demo_warehouse):
    guards = [r for r in demo_warehouse.build.results if "holds_every_raw_export" in r["unique_id"]]
    assert len(guards) == 10 and all(r["status"] == "pass" for r in guards), guards


@pytest.mark.slow
def test_a_late_file_and_a_deleted_export_fail_the_guard_until_rebuilt(tmp_path, project):
    """Four builds of the customers' staging (about a minute): the slow suite runs it."""
    project, database = project
    seed = project / SEED
    original = seed.read_text()
    seed.write_text(original + LATE_ROW + "\n")
    late = build_staging(tmp_path, project, database)
    assert [GUARD in failure for failure in guard_failures(late)] == [True], late.output()

    read = build_staging(tmp_path, project, database, "--vars", "{incremental_lookback_hours: 48}")
    assert read.not_passing() == [], read.output()

    seed.write_text(original)                                   # the file is deleted upstream
    gone = build_staging(tmp_path, project, database)
    assert [GUARD in failure for failure in guard_failures(gone)] == [True], gone.output()

    rebuilt = build_staging(tmp_path, project, database, "--full-refresh")
    assert rebuilt.not_passing() == [], rebuilt.output()
