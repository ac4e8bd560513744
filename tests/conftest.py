"""Shared fixtures: the committed demo world, built once per session in a temporary DuckDB file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DBT = Path(sys.executable).parent / "dbt"
DEMO_AS_OF = "2026-11-20 12:00:00"


@dataclass
class DbtRun:
    completed: subprocess.CompletedProcess
    results: list[dict]

    def output(self) -> str:
        return self.completed.stdout[-6000:] + self.completed.stderr[-2000:]

    def not_passing(self) -> list[str]:
        return [
            f"{result['unique_id']}: {result['status']} {result.get('message') or ''}"
            for result in self.results
            if result["status"] not in ("success", "pass", "no-op")
        ]


def run_dbt(workdir: Path, *arguments: str, database: Path, as_of: str = DEMO_AS_OF,
            project: Path = REPO, target: str = "target") -> DbtRun:
    """dbt in seeds mode; everything it writes (database, target, logs) stays under workdir."""
    env = {
        **os.environ,
        "PUSHER_SOURCE_DATA": "seeds",
        "PUSHER_AS_OF": as_of,
        "PUSHER_DUCKDB_PATH": str(database),
        "DBT_LOG_PATH": str(workdir / "logs"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    target_path = workdir / target
    completed = subprocess.run(
        [str(DBT), *arguments, "--profiles-dir", str(project), "--project-dir", str(project),
         "--target-path", str(target_path)],
        cwd=project, env=env, capture_output=True, text=True, timeout=300,
    )
    results_file = target_path / "run_results.json"
    results = json.loads(results_file.read_text())["results"] if results_file.exists() else []
    return DbtRun(completed, results)


def copy_project(destination: Path, singular_tests: bool = True) -> Path:
    """A copy of the dbt project (models, macros, seeds, tests, dbt_project.yml, profiles.yml) to
    edit in a test without touching the repository; returns its directory."""
    folders = ["models", "macros", "seeds", "tests/generic"] + (["tests/singular"] if singular_tests else [])
    for name in folders:
        shutil.copytree(REPO / name, destination / name)
    for name in ("dbt_project.yml", "profiles.yml"):
        shutil.copy(REPO / name, destination / name)
    return destination


@pytest.fixture(scope="session")
def dbt_runner():
    """run_dbt, for tests that need their own dbt invocation (same isolation rules)."""
    return run_dbt


@dataclass
class DemoWarehouse:
    workdir: Path
    database: Path
    build: DbtRun


@pytest.fixture(scope="session")
def demo_warehouse(tmp_path_factory) -> DemoWarehouse:
    workdir = tmp_path_factory.mktemp("demo-warehouse")
    database = workdir / "demo.duckdb"
    build = run_dbt(workdir, "build", database=database)
    assert build.results, build.output()
    return DemoWarehouse(workdir, database, build)


# The modules that take longest (whole dbt builds, end-to-end loops; minutes each on 2 cores),
# longest first. `make test` runs the suite on two workers, a file at a time each (pytest-xdist,
# --dist loadfile): started first, these keep both workers busy to the end, where one of them,
# started last, would run alone after the other had finished.
LONGEST_FIRST = ("warehouse/test_incremental_equals_full_refresh.py", "e2e/test_end_to_end.py",
                 "warehouse/test_late_and_future_exports.py", "e2e/test_demo_story.py",
                 "warehouse/test_generated_build.py", "warehouse/test_out_of_the_box.py")


def pytest_collection_modifyitems(items):
    def rank(item) -> int:
        path = item.path.as_posix()
        return next((i for i, name in enumerate(LONGEST_FIRST) if path.endswith("tests/" + name)), len(LONGEST_FIRST))

    items.sort(key=rank)        # stable: every other test keeps its place
