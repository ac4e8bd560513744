"""Cadence: parsed and checked with the sync definitions, `sync --due` runs only due syncs,
`status --check` exits 7 when a sync is late, a too-slow window cadence warns."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from typer.testing import CliRunner

from pusher import cadence
from pusher.cli import app
from pusher.ledger import table

NOW = datetime(2026, 11, 20, 12, 0, 0)


@pytest.fixture
def run(project, monkeypatch):
    monkeypatch.setenv("PUSHER_FILE_DIR", str(project.out))
    for name in ("DBT_TARGET", "DBT_PROFILES_DIR", "DBT_TARGET_PATH"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [*args, "--project-dir", str(project.root)])


def test_parse_and_window_rules():
    assert [cadence.parse("s", v) for v in ("15m", "1h", "2d", None)] == [900, 3600, 172800, None]
    for bad in ("15", "1w", "0m", "1.5h", 15, "15 m"):
        with pytest.raises(Exception, match="sync s: meta.pusher.cadence"):
            cadence.parse("s", bad)
    assert cadence.window_seconds("CIO__Cart_Abandon_0-1d__NoPurchase") == 86400
    assert cadence.window_seconds("MSADS__Lapsed_90-120d__NoPurchase_NoOpenReturn") == 30 * 86400
    assert cadence.window_seconds("CIO__Lapsed_120d_plus__NoPurchase") is None
    assert cadence.window_seconds("CIO__Vip_High_Ltv") is None


def test_due_has_a_grace_so_cron_at_the_same_interval_never_skips_a_turn():
    hour = 3600
    assert cadence.is_due(hour, None, NOW) and cadence.is_due(None, NOW, NOW)
    assert cadence.is_due(hour, NOW - timedelta(minutes=59, seconds=30), NOW)      # cron started a bit early
    assert not cadence.is_due(hour, NOW - timedelta(minutes=50), NOW)
    assert cadence.next_due_in(hour, NOW - timedelta(minutes=50), NOW) == 5 * 60   # grace: 5 min
    assert not cadence.is_late(hour, NOW - timedelta(minutes=119), NOW)
    assert cadence.is_late(hour, NOW - timedelta(minutes=121), NOW) and cadence.is_late(hour, None, NOW)
    assert not cadence.is_late(None, None, NOW)


def test_bad_cadence_is_a_config_error_naming_sync_and_field(project, run):
    project.set_meta("sync_people", cadence="hourly")
    result = run("plan", "--json")
    assert result.exit_code == 5
    outcome = {item["sync"]: item for item in json.loads(result.stdout)["syncs"]}["sync_people"]   # its own error
    error = outcome["message"]
    assert outcome["status"] == "config_error"
    assert "sync_people" in error and "meta.pusher.cadence" in error and "15m" in error


def test_a_slow_cart_cadence_warns(project, run):
    project.set_meta("sync_cart", cadence="1d")          # FILE__Cart_Abandon_0-1d__NoPurchase
    result = run("plan", "-s", "sync_cart")
    assert result.exit_code == 0
    assert "sync sync_cart: cadence 1d is too slow for its 1d window" in result.stderr
    assert "at most 6h" in result.stderr
    project.set_meta("sync_cart", cadence="6h")
    assert "too slow" not in run("plan", "-s", "sync_cart").stderr


def _age_last_success(project, sync: str, minutes: int) -> None:
    project.sql(f"update {table('sync_runs')} set started_at = started_at - to_minutes(cast(? as bigint)), "
                "finished_at = finished_at - to_minutes(cast(? as bigint)) where sync = ?", [minutes, minutes, sync])


def test_sync_due_and_status_check(project, run):
    project.set_meta("sync_cart", cadence="1h")
    project.set_meta("sync_people", cadence="15m")
    project.set_audience_range(0, 3)

    check = run("status", "--check", "--json")
    assert check.exit_code == 7 and "sync_cart" in check.stderr           # never synced, with a cadence: late
    assert {r["sync"]: r["late"] for r in json.loads(check.stdout)["syncs"]} == \
        {"sync_cart": True, "sync_events": False, "sync_people": True}

    first = json.loads(run("sync", "--due", "--json").stdout)
    assert sorted(s["sync"] for s in first["syncs"]) == ["sync_cart", "sync_events", "sync_people"]
    assert run("status", "--check").exit_code == 0

    second = run("sync", "--due", "--json")
    assert [s["sync"] for s in json.loads(second.stdout)["syncs"]] == ["sync_events"]   # no cadence: always
    assert "sync_cart: not due (cadence 1h, next in" in second.stderr

    _age_last_success(project, "sync_people", 15)
    third = json.loads(run("sync", "--due", "--json").stdout)
    assert sorted(s["sync"] for s in third["syncs"]) == ["sync_events", "sync_people"]

    _age_last_success(project, "sync_cart", 121)                          # two turns missed
    check = run("status", "--check")
    assert check.exit_code == 7 and "late for their cadence: sync_cart" in check.stderr
    assert "LATE" in check.stderr
    assert run("status").exit_code == 0                                   # without --check: informational
    project.set_audience_range(0, 4)
    assert json.loads(run("sync", "--due", "-s", "sync_cart", "--json").stdout)["syncs"][0]["sent"]["adds"] == 1
    assert run("status", "--check").exit_code == 0


def test_nothing_due_ends_without_a_run(project, run):
    project.set_meta("sync_cart", cadence="1d")
    assert run("sync", "-s", "sync_cart").exit_code == 0
    result = run("sync", "--due", "-s", "sync_cart", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["syncs"] == [] and "no sync is due" in result.stderr
    assert len(json.loads(run("history", "--json").stdout)["runs"]) == 1
