"""The commands through typer's CliRunner: --json on stdout, exit codes, status/history."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from pusher.cli import app


@pytest.fixture
def run(project, monkeypatch):
    monkeypatch.setenv("PUSHER_FILE_DIR", str(project.out))
    monkeypatch.delenv("DBT_TARGET", raising=False)
    monkeypatch.delenv("DBT_PROFILES_DIR", raising=False)
    monkeypatch.delenv("DBT_TARGET_PATH", raising=False)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, [*args, "--project-dir", str(project.root)])
    return invoke


def test_plan_sync_status_history_json(project, run):
    project.set_audience_range(0, 12)
    result = run("plan", "--select", "sync_cart", "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)["syncs"][0]["plan"]
    assert plan["adds"] == 12 and project.listed() == {}

    result = run("sync", "--select", "aud_cart", "--json")          # a model name selects its sync
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["syncs"][0]["sent"]["adds"] == 12 and document["exit_code"] == 0
    assert project.listed() == project.audience()

    status = json.loads(run("status", "--select", "sync_cart", "--json").stdout)["syncs"][0]
    assert status["audience_size"] == 12 and status["destination_size"] == 12
    assert status["last_success_at"] and status["rejected_exhausted"] == 0

    runs = json.loads(run("history", "--json").stdout)["runs"]
    assert runs[0]["status"] == "done" and runs[0]["syncs"][0]["adds"] == 12
    detail = json.loads(run("history", "--run", runs[0]["run_id"], "--json").stdout)["runs"][0]
    assert detail["batches"][0]["op"] == "replace" and detail["batches"][0]["accepted"] == 12


def test_guard_exit_code_and_dry_run(project, run):
    project.set_audience_range(0, 10)
    assert run("sync", "-s", "sync_cart").exit_code == 0
    project.set_audience([])
    result = run("sync", "-s", "sync_cart", "--dry-run", "--json")
    assert result.exit_code == 4
    assert "max_remove_share" in json.loads(result.stdout)["syncs"][0]["message"]
    result = run("sync", "-s", "sync_cart")
    assert result.exit_code == 4 and "--override remove_share" in result.stderr and len(project.listed()) == 10
    assert run("sync", "-s", "sync_cart", "--force").exit_code == 0 and project.listed() == {}


def test_override_goes_past_the_named_guard_only(project, run):
    project.set_audience_range(0, 10)
    assert run("sync", "-s", "sync_cart").exit_code == 0
    project.set_audience([])
    (project.root / "target" / "run_results.json").write_text(json.dumps({"results": [
        {"unique_id": "test.proj.not_null_stg_store__customers_customer_id.abc", "status": "fail"}]}))
    result = run("sync", "-s", "sync_cart", "--override", "remove_share", "--json")
    outcome = json.loads(result.stdout)["syncs"][0]
    assert result.exit_code == 4 and outcome["stopped_by"] == ["failed_tests"] and len(project.listed()) == 10
    assert "--override failed_tests" in outcome["message"] and "max_remove_share" not in outcome["message"]
    result = run("sync", "-s", "sync_cart", "--override", "remove_share", "--override", "failed_tests", "--json")
    outcome = json.loads(result.stdout)["syncs"][0]
    assert result.exit_code == 0 and project.listed() == {}
    assert sorted(w.split(")")[0] for w in outcome["warnings"]) == ["overridden (failed_tests", "overridden (remove_share"]
    history = json.loads(run("history", "--json").stdout)["runs"]
    assert history[0]["command"] == "sync --override failed_tests --override remove_share"


def test_unknown_override_is_a_config_error(project, run):
    result = run("sync", "--override", "everything", "--json")
    assert result.exit_code == 5
    error = json.loads(result.stdout)["error"]
    assert "everything" in error and "remove_share" in error and project.listed() == {}


def test_missing_manifest_is_a_config_error(project, run):
    (project.root / "target" / "manifest.json").unlink()
    result = run("plan", "--json")
    assert result.exit_code == 5
    assert "dbt build" in json.loads(result.stdout)["error"]


def test_bad_sync_definition_names_sync_and_field(project, run):
    project.set_meta("sync_cart", list_name="CIO__Wrong_Prefix")
    result = run("plan", "--json")
    assert result.exit_code == 5
    # Reported as that sync's own config error; the other syncs are still planned.
    outcomes = {item["sync"]: item for item in json.loads(result.stdout)["syncs"]}
    error = outcomes["sync_cart"]["message"]
    assert outcomes["sync_cart"]["status"] == "config_error"
    assert "sync_cart" in error and "list_name" in error and "FILE__" in error
    assert outcomes["sync_people"]["status"] == "planned"


def test_unknown_select_is_a_config_error(project, run):
    result = run("plan", "--select", "nope")
    assert result.exit_code == 5 and "nope" in result.output


def test_one_sync_failing_does_not_stop_the_others(project, run):
    project.set_audience([("c1", "bad", None)])
    project.sql("insert into cio_events values ('e1', 'p1', 'order_placed', timestamp '2024-01-01', 1)")
    result = run("sync", "-s", "sync_cart", "-s", "sync_events", "--json")
    document = json.loads(result.stdout)
    assert result.exit_code == 5
    statuses = {s["sync"]: s["status"] for s in document["syncs"]}
    assert statuses == {"sync_cart": "input_error", "sync_events": "ok"} and set(project.events()) == {"e1"}
