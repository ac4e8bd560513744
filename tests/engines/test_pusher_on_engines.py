"""The pusher's whole loop on the demo built by PostgreSQL and by Spark: `pusher` as a process,
both emulators over real HTTP (tests/e2e's stack), the ledger in the state file as on DuckDB.
plan, sync, a no-change rerun that sends no request, churn (members leave and join: exactly
those are sent), and a row the destination rejects, retried until it is fixed."""

from __future__ import annotations

import hashlib
import re
import shutil
import uuid
from contextlib import ExitStack
from pathlib import Path

import duckdb
import pytest

from pusher.config import load_project
from pusher.emulators.compare import compare_all, fetch_states
from pusher.warehouse import Warehouse, load_profile
from tests.conftest import REPO
from tests.e2e.test_end_to_end import Stack, start_stack

from . import postgres_server

pytestmark = [pytest.mark.engines, pytest.mark.timeout(1200)]

VIP = "aud_vip_high_ltv"
EDITED = (VIP, "cio_people")          # the models the loop edits


def by_sync(report: dict) -> dict[str, dict]:
    return {item["sync"]: item for item in report["syncs"]}


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class PostgresTables:
    """Reads and edits of the demo's models on the PostgreSQL copy (? placeholders)."""

    def __init__(self, server, database: str):
        self.server, self.database = server, database

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        return postgres_server.execute(self.server, self.database, sql.replace("?", "%s"), params)

    edit = query


class SparkTables:
    """The Spark demo's parquet tables, read and rewritten with DuckDB: a Spark session in the
    test process would hold the embedded metastore the pusher's own Spark needs. Spark lists a
    table's files on every read, so a rewritten table is what the next pusher run sees."""

    def __init__(self, tables_dir: Path):
        self.tables_dir = tables_dir

    def _connect(self) -> duckdb.DuckDBPyConnection:
        connection = duckdb.connect()
        connection.execute("set TimeZone = 'UTC'")
        connection.execute("create schema retention")
        for table in self.tables_dir.iterdir():
            if table.is_dir() and list(table.glob("*.parquet")):
                connection.execute(f"create view retention.{table.name} as "
                                   f"select * from read_parquet('{table}/*.parquet')")
        return connection

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._connect() as connection:
            return connection.execute(sql, list(params)).fetchall()

    def edit(self, sql: str, params: tuple = ()) -> None:
        """A delete, insert or update of one model, as SQL on a DuckDB copy, written back."""
        table = re.search(r"retention\.(\w+)", sql)[1]
        with self._connect() as connection:
            connection.execute(f"create table edited as select * from retention.{table}")
            connection.execute(sql.replace(f"retention.{table}", "edited"), list(params))
            # timestamps written as UTC instants, the type Spark's `timestamp` reads
            columns = ", ".join(f"cast({name} as timestamptz) as {name}" if kind == "TIMESTAMP" else name
                                for name, kind in connection.execute("select column_name, data_type from "
                                "information_schema.columns where table_name = 'edited' order by ordinal_position"
                                ).fetchall())
            written = self.tables_dir / f"{table}.rewritten.parquet"
            connection.execute(f"copy (select {columns} from edited) to '{written}' (format parquet)")
        directory = self.tables_dir / table
        for old in directory.iterdir():
            old.unlink()
        written.rename(directory / "part-00000-rewritten.parquet")

    def mirror(self, path: Path) -> Path:
        """A DuckDB file whose retention.* views read the tables, for comparing destinations."""
        with duckdb.connect(str(path)) as connection:
            connection.execute("create schema retention")
            for table in self.tables_dir.iterdir():
                if table.is_dir() and list(table.glob("*.parquet")):
                    connection.execute(f"create view retention.{table.name} as "
                                       f"select * from read_parquet('{table}/*.parquet')")
        return path


@pytest.fixture
def postgres_stack(tmp_path, monkeypatch, postgres, postgres_demo):
    """A private copy of the PostgreSQL demo database (and its manifest), with both emulators."""
    database = f"loop_{uuid.uuid4().hex[:8]}"
    postgres_server.create_database(postgres, database, template=postgres_demo.env["PUSHER_PG_DATABASE"])
    target = tmp_path / "target"
    target.symlink_to(postgres_demo.workdir / "target")
    with ExitStack() as stack:
        yield (start_stack(stack, tmp_path, monkeypatch, {**postgres.env(database), "DBT_TARGET": "postgres",
                                                          "DBT_TARGET_PATH": str(target)}, Path(database)),
               PostgresTables(postgres, database))


class SparkStack(Stack):
    tables: SparkTables

    def comparisons(self):
        project = load_project(REPO, Path(self.env["DBT_TARGET_PATH"]))
        wh = Warehouse.open_duckdb(self.tables.mirror(self.root / f"mirror-{uuid.uuid4().hex[:6]}.duckdb"))
        try:
            return compare_all(project, wh, fetch_states(self.cio_url, self.msads_url))
        finally:
            wh.close()


@pytest.fixture
def spark_stack(tmp_path, monkeypatch, spark_demo):
    """The Spark demo with both emulators; the models the loop edits are restored afterwards
    (the session's build is shared)."""
    tables_dir = spark_demo.workdir / "spark-warehouse" / f"{spark_demo.env['PUSHER_SPARK_SCHEMA']}.db"
    backup = tmp_path / "backup"
    for table in EDITED:
        shutil.copytree(tables_dir / table, backup / table)
    try:
        with ExitStack() as stack:
            made = start_stack(stack, tmp_path, monkeypatch, {**spark_demo.env, "DBT_TARGET": "spark",
                                                              "DBT_TARGET_PATH": str(spark_demo.workdir / "target")},
                               tables_dir)
            spark = SparkStack(**{name: getattr(made, name) for name in ("root", "env", "cio_url", "msads_url",
                                                                         "pristine")})
            spark.tables = SparkTables(tables_dir)
            yield spark, spark.tables
    finally:
        for table in EDITED:
            shutil.rmtree(tables_dir / table)
            shutil.copytree(backup / table, tables_dir / table)


def first_sync_then_no_change(stack: Stack, tables) -> None:
    """plan and a first sync of everything, the destinations then equal to the warehouse, and a
    no-change rerun that sends no request."""
    people = tables.query("select count(*) from retention.cio_people")[0][0]
    vip = tables.query(f"select count(*) from retention.{VIP} where email_sha256 is not null")[0][0]  # Microsoft's
    plan = by_sync(stack.pusher("plan"))
    assert plan["cio_people"]["plan"]["updates"] == people > 300
    assert plan["msads_list_vip_high_ltv"]["plan"]["adds"] == vip > 10

    first = stack.pusher("sync")
    assert first["exit_code"] == 0
    assert by_sync(first)["cio_people"]["sent"]["updates"] == people
    stack.assert_destinations_equal_warehouse()

    before = stack.requests()
    again = stack.pusher("sync")
    assert stack.requests() == before, "a no-change rerun must not send a single request"
    assert all(item["requests"] == 0 for item in again["syncs"])


def whole_loop(stack: Stack, tables) -> None:
    """plan, sync, no-change rerun, churn with a rejected row, the row fixed and retried. On
    Spark (a JVM per pusher run) the churn and the rejection share one run."""
    first_sync_then_no_change(stack, tables)

    # Churn: two VIPs leave, a person who is in no VIP list joins; and a first name Customer.io
    # refuses (over 1000 bytes) on someone else.
    leaving = [row[0] for row in tables.query(f"select customer_id from retention.{VIP} where email_sha256 is not "
                                              "null order by customer_id limit 2")]
    joining, email = tables.query("select customer_id, email from retention.cio_people where email is not null and "
                                  f"customer_id not in (select customer_id from retention.{VIP}) "
                                  "order by customer_id limit 1")[0]
    refused = tables.query(f"select min(customer_id) from retention.cio_people where customer_id not in "
                           f"(select customer_id from retention.{VIP})")[0][0]
    tables.edit(f"delete from retention.{VIP} where customer_id in (?, ?)", tuple(leaving))
    # a wrong member_fingerprint on purpose: the pusher's copy computes its own
    tables.edit(f"insert into retention.{VIP} select ?, ?, null, audience_name, list_name, exclusivity_group, "
                f"entered_at, 0 from retention.{VIP} limit 1", (joining, sha256(email)))
    tables.edit("update retention.cio_people set first_name = repeat('x', 1100) where customer_id = ?", (refused,))
    churn = by_sync(stack.pusher("sync", ok=(3,)))
    for name in ("msads_list_vip_high_ltv", "cio_segment_vip_high_ltv"):
        assert (churn[name]["sent"]["adds"], churn[name]["sent"]["removes"]) == (1, 2), churn[name]
    assert churn["cio_people"]["rejected"] == 1 and churn["cio_people"]["exit_code"] == 3
    others = [name for name, item in churn.items()
              if item["requests"] and "vip_high_ltv" not in name and name != "cio_people"]
    assert not others, f"only the VIP lists and one person changed, yet {others} sent requests"

    tables.edit("update retention.cio_people set first_name = 'Retried' where customer_id = ?", (refused,))
    fixed = by_sync(stack.pusher("sync"))
    assert fixed["cio_people"]["sent"]["updates"] == 1 and fixed["cio_people"]["exit_code"] == 0
    attributes = fetch_states(stack.cio_url, None)["customerio"]["people"][refused]["attributes"]
    assert attributes["first_name"] == "Retried"
    stack.assert_destinations_equal_warehouse()


def test_the_whole_loop_on_postgres(postgres_stack):
    whole_loop(*postgres_stack)


def test_only_what_the_selected_syncs_read_is_copied(postgres_stack):
    """--select copies the selected syncs' models (an audience's: also the events model of its
    destination) and the test evidence, nothing else: an unselected model that cannot be read
    (a view that divides by zero) does not stop a selected sync, and stops one that reads it with
    an error naming it."""
    stack, tables = postgres_stack
    tables.edit("alter table retention.cio_events rename to cio_events_built")
    tables.edit("create view retention.cio_events as select *, 1 / (length(event_id) - length(event_id)) "
                "as unreadable from retention.cio_events_built")
    project = load_project(REPO, Path(stack.env["DBT_TARGET_PATH"]))
    wh = Warehouse.connect(load_profile(REPO, env=stack.env), env=stack.env, project=project, select=["cio_people"])
    try:
        assert set(wh.copied) == {"retention.cio_people", "retention.pusher_dbt_results"}
    finally:
        wh.close()
    plan = stack.pusher("plan", "--select", "cio_people")
    assert [item["sync"] for item in plan["syncs"]] == ["cio_people"] and plan["exit_code"] == 0

    failed = stack.pusher("plan", "--select", "cio_segment_vip_high_ltv", ok=(5,))
    assert "cannot read retention.cio_events from the warehouse" in failed["error"]
    assert "division by zero" in failed["error"]


def test_the_whole_loop_on_spark(spark_stack):
    whole_loop(*spark_stack)


def test_a_big_partition_is_copied_by_a_small_spark_driver(spark_stack):
    """A million audience rows in one parquet file, so one partition, read by a 512 MB Spark
    driver: Spark's own tasks write the CSV lines, so no partition is ever held whole by the
    driver (toLocalIterator, which hands it each partition, ran out of memory on this)."""
    stack, tables = spark_stack
    members = tables.query(f"select count(*) from retention.{VIP} where email_sha256 is not null")[0][0]
    tables.edit(f"insert into retention.{VIP} select 'big' || i, sha256('big' || i || '@example.com'), null, "
                "audience_name, list_name, exclusivity_group, entered_at, 0 from range(1000000) as t(i) "
                f"cross join (select * from retention.{VIP} limit 1)")
    stack.env["PUSHER_SPARK_DRIVER_MEMORY"] = "512m"
    plan = by_sync(stack.pusher("plan", "--select", "msads_list_vip_high_ltv"))
    assert plan["msads_list_vip_high_ltv"]["plan"]["adds"] == members + 1_000_000


def test_a_ledger_moved_between_engines_sends_nothing(tmp_path, monkeypatch, demo_warehouse, postgres,
                                                      postgres_demo, spark_demo):
    """Sync the demo from the DuckDB build, then point the same state file at the PostgreSQL
    build and at the Spark build of the same seeds: nothing to send, because the pusher computes
    every fingerprint and payload hash itself, from values of the same types on every engine."""
    database = tmp_path / demo_warehouse.database.name
    shutil.copy(demo_warehouse.database, database)
    with ExitStack() as stack:
        duck = start_stack(stack, tmp_path, monkeypatch, {"PUSHER_DUCKDB_PATH": str(database),
                                                          "DBT_TARGET_PATH": str(demo_warehouse.workdir / "target")},
                           demo_warehouse.database)
        assert duck.pusher("sync")["exit_code"] == 0
        before = duck.requests()
        moves = {"PostgreSQL": {**postgres.env(postgres_demo.env["PUSHER_PG_DATABASE"]), "DBT_TARGET": "postgres",
                                "DBT_TARGET_PATH": str(postgres_demo.workdir / "target")},
                 "Spark": {**spark_demo.env, "DBT_TARGET": "spark",
                           "DBT_TARGET_PATH": str(spark_demo.workdir / "target")}}
        for engine, env in moves.items():
            moved = Stack(duck.root, {**duck.env, **env}, duck.cio_url, duck.msads_url, duck.pristine)
            report = moved.pusher("sync")
            sending = {item["sync"]: item["sent"] for item in report["syncs"] if item["requests"]}
            assert not sending and duck.requests() == before, f"on {engine} the moved ledger sent {sending}"
