"""The demo on a Spark Thrift server (the committed `spark_thrift` target: dbt-spark's PyHive
method, as a Spark cluster or Databricks is reached), and the pusher reading it through the
generic cursor reader (pusher.sources.SparkCursorSource): one server and one build for the module.
The build's audience membership and cio_people equal DuckDB's; the pusher plans, syncs, and a
no-change rerun sends no request."""

from __future__ import annotations

import time
from contextlib import ExitStack

import pytest

from pusher import sources
from pusher.config import load_project
from pusher.warehouse import Warehouse, load_profile
from tests.conftest import REPO
from tests.e2e.test_end_to_end import start_stack

from . import spark_thrift_server
from .conftest import EngineBuild, run_dbt_target
from .test_pusher_on_engines import SparkTables, first_sync_then_no_change
from .test_same_results import assert_same, duckdb_rows, spark_rows

pytestmark = [pytest.mark.engines, pytest.mark.timeout(2400)]


@pytest.fixture(scope="module")
def thrift_demo():
    server = spark_thrift_server.start()
    try:
        # dbt mostly waits on the server (it polls each statement): 4 threads overlap the waits
        env = {**server.env(), "DBT_TARGET": "spark_thrift", "PUSHER_DBT_THREADS": "4"}
        started = time.monotonic()
        build = run_dbt_target(server.root, "spark_thrift", env, "build")
        print(f"dbt build over Thrift: {time.monotonic() - started:.0f} s")
        assert build.results, build.output() + server.log_tail()
        yield server, EngineBuild(server.root, env, build)
    finally:
        spark_thrift_server.stop(server)


def test_the_demo_builds_over_thrift_and_equals_duckdb(thrift_demo, demo_warehouse):
    _, build = thrift_demo
    assert not build.build.not_passing() and len(build.build.results) > 250, build.build.output()
    for table, left_out in {"audience_membership": {"member_fingerprint"}, "cio_people": set()}.items():
        assert_same(table, duckdb_rows(demo_warehouse, table, left_out), spark_rows(build, table, left_out),
                    "Spark over Thrift")


def test_the_pusher_reads_thrift_with_the_generic_reader(thrift_demo, tmp_path, monkeypatch):
    server, build = thrift_demo
    env = {**build.env, "DBT_TARGET_PATH": str(build.workdir / "target")}
    profile = load_profile(REPO, env=env)
    source = sources.open_source(profile)
    try:
        assert isinstance(source, sources.SparkCursorSource)
    finally:
        source.close()
    # every synced model copied whole (counted on the parquet files Spark wrote)
    tables = SparkTables(server.tables_dir / "retention.db")
    project = load_project(REPO, build.workdir / "target")
    wh = Warehouse.connect(profile, env=env, project=project)
    try:
        for _, schema, name in {sync.relation for sync in project.syncs}:
            assert wh.copied[f"{schema}.{name}"] == tables.query(f"select count(*) from retention.{name}")[0][0]
    finally:
        wh.close()

    with ExitStack() as stack:
        pusher = start_stack(stack, tmp_path, monkeypatch, env, server.tables_dir)
        first_sync_then_no_change(pusher, tables)
