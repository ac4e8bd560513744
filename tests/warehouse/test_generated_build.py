"""The whole dbt project builds and tests green on 100k generated customers (Parquet sources)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

REPO = Path(__file__).resolve().parents[2]
GENERATOR = REPO / "scripts" / "generate_sources.py"
DBT = Path(sys.executable).parent / "dbt"
AS_OF = "2026-11-20 12:00:00"
CUSTOMERS = 100_000


def dbt(tmp: Path, *arguments: str, as_of: str = AS_OF) -> subprocess.CompletedProcess:
    """Run dbt in parquet mode with every path it writes inside tmp."""
    env = {
        **os.environ,
        "PUSHER_SOURCE_DATA": "parquet",
        "PUSHER_PARQUET_PATH": str(tmp / "generated"),
        "PUSHER_AS_OF": as_of,
        "PUSHER_DUCKDB_PATH": str(tmp / "warehouse.duckdb"),
        "DBT_LOG_PATH": str(tmp / "logs"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    return subprocess.run(
        [str(DBT), *arguments, "--profiles-dir", ".", "--project-dir", ".",
         "--target-path", str(tmp / "target")],
        cwd=REPO, env=env, capture_output=True, text=True,
    )


def generate(out: Path, customers: int, as_of: str | None) -> None:
    command = [sys.executable, str(GENERATOR), "--customers", str(customers), "--seed", "42",
               "--out", str(out)]
    if as_of:
        command += ["--as-of", as_of]
    completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr


def failures(run_results: dict) -> list[str]:
    """Every node that did not succeed (exposures have nothing to run: dbt reports no-op)."""
    return [
        f"{result['unique_id']}: {result['status']} {result.get('message') or ''}"
        for result in run_results["results"]
        if result["status"] not in ("success", "pass")
        and not (result["unique_id"].startswith("exposure.") and result["status"] == "no-op")
    ]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("generated-build")
    generate(tmp / "generated", CUSTOMERS, AS_OF)
    completed = dbt(tmp, "build")
    run_results = tmp / "target" / "run_results.json"
    assert run_results.exists(), completed.stdout[-4000:] + completed.stderr[-2000:]
    results = json.loads(run_results.read_text())
    assert failures(results) == [], completed.stdout[-4000:]
    assert completed.returncode == 0, completed.stdout[-4000:]
    return tmp


def test_every_node_of_the_build_succeeds(built):
    results = json.loads((built / "target" / "run_results.json").read_text())
    kinds = {result["unique_id"].split(".")[0] for result in results["results"]}
    assert {"model", "test"} <= kinds
    assert failures(results) == []
    tests = [r for r in results["results"] if r["unique_id"].startswith("test.")]
    assert len(tests) > 20, "the build ran the project's data tests"


def test_the_models_read_the_generated_files_not_the_seeds(built):
    with duckdb.connect(str(built / "warehouse.duckdb"), read_only=True) as con:
        customers = con.execute("SELECT count(*) FROM customer_profile").fetchone()[0]
    # the demo seeds hold ~300 customers; shared emails merge a few people into one
    assert CUSTOMERS * 0.99 <= customers <= CUSTOMERS * 1.01


def test_every_audience_and_sync_model_has_members(built):
    with duckdb.connect(str(built / "warehouse.duckdb"), read_only=True) as con:
        audiences = [
            name for (name,) in con.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_name LIKE 'aud\\_%' ESCAPE '\\' ORDER BY 1"
            ).fetchall()
        ]
        assert len(audiences) >= 8, audiences
        sizes = {
            name: con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
            for name in [*audiences, "audience_membership", "cio_people", "cio_events"]
        }
    empty = [name for name, size in sizes.items() if size == 0]
    assert empty == [], sizes
    assert sizes["audience_membership"] == sum(sizes[name] for name in audiences)


def test_source_freshness_passes_on_a_world_generated_now(tmp_path):
    """Without --as-of the exports are minutes old, so dbt's real-clock freshness check passes."""
    generate(tmp_path / "generated", 2_000, as_of=None)
    completed = dbt(tmp_path, "source", "freshness", as_of="")
    sources = json.loads((tmp_path / "target" / "sources.json").read_text())
    statuses = {result["unique_id"]: result["status"] for result in sources["results"]}
    # every source system is checked (a table may opt out with freshness: null)
    assert {unique_id.split(".")[2] for unique_id in statuses} == {
        "store", "subscriptions", "loyalty", "returns", "reviews", "back_in_stock", "web_events"}
    assert set(statuses.values()) == {"pass"}, statuses
    assert completed.returncode == 0, completed.stdout[-3000:]
