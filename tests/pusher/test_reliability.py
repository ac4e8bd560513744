"""What real teams do to the pusher (issue 9): rebuild the warehouse, lose the ledger, hide
failed tests, interrupt runs. A real DuckDB warehouse and state file, the CLI as a process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import duckdb
import pytest

from pusher.errors import EXIT_GUARD_STOPPED, EXIT_OK

from .conftest import Project


@pytest.fixture
def project(tmp_path) -> Project:
    return Project(tmp_path)


def pusher(project: Project, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, **project.env, "DBT_PROFILES_DIR": str(project.root), **(env or {})}
    for name in ("DBT_TARGET", "DBT_TARGET_PATH", "PUSHER_STATE_PATH"):
        if name not in (env or {}):
            environment.pop(name, None)
    return subprocess.run([sys.executable, "-m", "pusher", *args, "--project-dir", str(project.root)],
                          env=environment, capture_output=True, text=True, timeout=300)


def members_in(state_file) -> int:
    with duckdb.connect(str(state_file), read_only=True) as conn:
        return conn.execute("select count(*) from pusher_ledger.members").fetchone()[0]


# -- 9.1 the ledger lives in its own state file ------------------------------------------------------
def test_the_ledger_lives_outside_the_warehouse_and_survives_its_rebuild(project):
    project.set_audience_range(0, 20)
    assert project.sync().exit_code == EXIT_OK
    assert project.state.exists()
    assert project.sql("select count(*) from information_schema.schemata where catalog_name = 'warehouse' "
                       "and schema_name = 'pusher_ledger'") == [(0,)], "nothing of the ledger in the warehouse"
    # The warehouse is deleted and built again from scratch, with the same data.
    project.db.unlink()
    Project(project.root)                     # recreates the (empty) tables and the manifest
    project.set_audience_range(0, 20)
    report = project.sync()
    assert report.exit_code == EXIT_OK and report.outcomes[0].requests == 0
    assert len(project.ledger()) == 20


def test_state_path_setting_is_taken_from_the_project(project, tmp_path_factory):
    project.set_audience_range(0, 3)
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    done = pusher(project, "sync", "--json", env={"PUSHER_STATE_PATH": "state/ledger.duckdb"})
    assert done.returncode == 0, done.stderr
    assert members_in(project.root / "state" / "ledger.duckdb") == 3
    done = pusher(project, "sync", "--json", env={"PUSHER_STATE_PATH": str(elsewhere / "x.duckdb")})
    assert done.returncode == 0 and members_in(elsewhere / "x.duckdb") == 3


def test_an_old_in_warehouse_ledger_is_copied_once_into_the_state_file(project):
    project.set_audience_range(0, 20)
    project.sync()
    # What an older pusher left: the ledger in the warehouse's schema pusher_ledger, no state file.
    tables = [row[0] for row in project.sql("select table_name from information_schema.tables "
                                            "where table_catalog = 'pusher_state' and table_type = 'BASE TABLE'")]
    project.sql("create schema warehouse.pusher_ledger")
    for name in tables:
        project.sql(f"create table warehouse.pusher_ledger.{name} as select * from pusher_state.pusher_ledger.{name}")
    project.lose_ledger()

    moved = pusher(project, "sync", "--json")
    assert moved.returncode == 0, moved.stderr
    assert "ledger was copied from the warehouse" in moved.stderr and str(project.state) in moved.stderr
    assert json.loads(moved.stdout)["syncs"][0]["requests"] == 0, "the copied ledger is used: nothing resent"
    assert len(project.ledger()) == 20

    # Once only: a later loss of the state file never brings the stale warehouse copy back.
    project.lose_ledger()
    again = pusher(project, "sync", "--json")
    assert again.returncode == 0 and "copied" not in again.stderr


def test_a_first_sync_never_replaces_a_list_it_does_not_know_beyond_the_guard(project):
    project.set_audience_range(0, 20)
    project.sync()
    project.lose_ledger()
    project.set_audience_range(0, 1)        # a broken model, and no ledger to compare it with
    report = project.sync()
    assert report.exit_code == EXIT_GUARD_STOPPED and report.outcomes[0].stopped_by == ["remove_share"]
    assert "holds 20 members" in report.outcomes[0].message
    assert len(project.listed()) == 20, "the list keeps its members"
    assert project.sync(overrides=["remove_share"]).exit_code == EXIT_OK
    assert project.listed() == project.audience()
