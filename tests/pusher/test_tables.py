"""Human output: compact tables on stderr, --json alone on stdout, samples only with --verbose
and never a raw email."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from pusher.cli import app
from pusher.pii import mask, mask_text


@pytest.fixture
def run(project, monkeypatch):
    monkeypatch.setenv("PUSHER_FILE_DIR", str(project.out))
    for name in ("DBT_TARGET", "DBT_PROFILES_DIR", "DBT_TARGET_PATH"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [*args, "--project-dir", str(project.root)])


def _people(project, count: int) -> None:
    project.sql("insert into cio_people select 'p' || cast(i as varchar), 'person' || cast(i as varchar) "
                "|| '@example.com', 'Ann', 10, false, timestamp '2024-01-01' from range(?) t(i)", [count])


def test_sync_prints_one_table_on_stderr_and_nothing_on_stdout(project, run):
    project.set_audience_range(0, 7)
    _people(project, 4)
    result = run("sync", "-s", "sync_cart", "-s", "sync_people")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    cart = next(line for line in lines if line.startswith("sync_cart"))
    people = next(line for line in lines if line.startswith("sync_people"))
    assert cart.split()[1:4] == ["ok", "7", "0"] and people.split()[1] == "ok"
    assert "sample" not in result.stderr and "@example.com" not in result.stderr
    assert len(lines) < 10          # one line per sync, not a block of samples


def test_verbose_shows_samples_with_masked_emails(project, run):
    _people(project, 3)
    result = run("plan", "-s", "sync_people", "--verbose")
    assert result.exit_code == 0, result.output
    samples = [line for line in result.stderr.splitlines() if "sample updates" in line]
    assert len(samples) == 3
    assert "@example.com" in result.stderr and "person0@example.com" not in result.stderr
    assert "p***@example.com" in result.stderr


def test_json_is_unchanged_on_stdout(project, run):
    project.set_audience_range(0, 3)
    result = run("sync", "-s", "sync_cart", "--json")
    assert json.loads(result.stdout)["syncs"][0]["sent"]["adds"] == 3
    assert "sync_cart" not in result.stderr     # no table next to the JSON document


def test_status_table(project, run):
    project.set_audience_range(0, 5)
    assert run("sync", "-s", "sync_cart").exit_code == 0
    result = run("status", "-s", "sync_cart", "-s", "sync_people")
    assert result.exit_code == 0 and result.stdout == ""
    rows = {line.split()[0]: line.split() for line in result.stderr.splitlines()
            if line.startswith(("sync_cart", "sync_people"))}
    assert rows["sync_cart"][2] == "FILE__Cart_Abandon_0-1d__NoPurchase"
    assert rows["sync_cart"][3] == "-" and rows["sync_cart"][5:9] == ["ago", "ok", "5", "5"]   # no cadence
    assert "never" in rows["sync_people"]
    status = json.loads(run("status", "-s", "sync_cart", "--json").stdout)
    assert status["syncs"][0]["destination_size"] == 5


def test_masking():
    assert mask_text("bounced: Jane.Doe@Example.com, +447700900123") == "bounced: J***@Example.com, +4***23"
    assert mask({"email": "a@b.io", "n": 3, "at": "2024-01-01 00:00:00"}) == \
        {"email": "a***@b.io", "n": 3, "at": "2024-01-01 00:00:00"}
    digest = "a" * 64
    assert mask_text(digest) == digest


def test_json_samples_are_masked_too(project, run):
    _people(project, 2)
    result = run("plan", "-s", "sync_people", "--json")
    samples = json.loads(result.stdout)["syncs"][0]["plan"]["samples"]["updates"]
    assert [row["attributes"]["email"] for row in samples] == ["p***@example.com"] * 2
    assert "person0@example.com" not in result.stdout
