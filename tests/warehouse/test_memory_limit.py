"""The committed DuckDB profile bounds dbt's memory (DuckDB would take 80% of the machine),
so big builds spill to disk; PUSHER_DBT_MEMORY_LIMIT overrides the bound."""

from __future__ import annotations

import os

import pytest

from tests.conftest import run_dbt

SHOW = ("show", "--inline", "select current_setting('memory_limit') as memory_limit", "--output", "json")


@pytest.mark.parametrize("setting, shown", [(None, "1.8 GiB"), ("1GiB", "1.0 GiB")])
def test_dbt_runs_duckdb_with_the_profiles_memory_limit(tmp_path, monkeypatch, setting, shown):
    monkeypatch.delenv("PUSHER_DBT_MEMORY_LIMIT", raising=False)
    if setting:
        monkeypatch.setenv("PUSHER_DBT_MEMORY_LIMIT", setting)
    assert os.environ.get("PUSHER_DBT_MEMORY_LIMIT") == setting
    result = run_dbt(tmp_path, *SHOW, database=tmp_path / "limit.duckdb")
    output = result.completed.stdout + result.completed.stderr
    assert result.completed.returncode == 0, output[-3000:]
    assert f'"memory_limit": "{shown}"' in output, output[-3000:]


def test_dbt_checkpoints_once_when_it_closes_the_file(tmp_path, demo_warehouse):
    """DuckDB checkpoints only past a 1GB write-ahead log during a build (not every 16MB), and
    dbt's close writes everything into the file: a finished build leaves no log to replay."""
    query = "select current_setting('checkpoint_threshold') as checkpoint_threshold"
    result = run_dbt(tmp_path, "show", "--inline", query, "--output", "json", database=tmp_path / "ckpt.duckdb")
    output = result.completed.stdout + result.completed.stderr
    assert result.completed.returncode == 0, output[-3000:]
    assert '"checkpoint_threshold": "953.6 MiB"' in output, output[-3000:]
    assert demo_warehouse.database.exists()
    assert not demo_warehouse.database.with_name(demo_warehouse.database.name + ".wal").exists()
