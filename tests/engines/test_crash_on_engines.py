"""kill -9 at random points with the audience on PostgreSQL and on Spark: the rerun converges
exactly as on DuckDB (tests/pusher/test_crash.py's machinery, its audience and churn written in
the engine). The ledger is the state file on every engine, so the promises are the same ones.
Spark starts a JVM per pusher run: one seed there."""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

from pusher.warehouse import COPY_PREFIX
from tests.conftest import REPO
from tests.pusher.conftest import Project
from tests.pusher.test_crash import AUDIENCE, crash_and_converge

from . import postgres_server
from .test_pusher_on_engines import SparkTables

pytestmark = [pytest.mark.engines, pytest.mark.timeout(1200)]


class PostgresProject(Project):
    """tests/pusher's project, its models in a PostgreSQL database of its own (schema `main`);
    the manifest still names the database `warehouse`, as another database name would."""

    def __init__(self, root, server, model_fingerprint: bool):
        super().__init__(root, model_fingerprint=model_fingerprint)
        self.server = server
        self.database = f"crash_{uuid.uuid4().hex[:8]}"
        postgres_server.create_database(server, self.database)
        self.edit("create schema main")
        fingerprint = ", member_fingerprint bigint" if model_fingerprint else ""
        self.edit("create table main.aud_cart (customer_id text, email_sha256 text, phone_sha256 text, "
                  f"audience_name text, list_name text, exclusivity_group text, entered_at timestamp{fingerprint})")
        (root / "profiles.yml").write_text(
            "proj:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n      host: " + server.host +
            "\n      port: \"{{ env_var('CRASH_PG_PORT') | as_number }}\"\n      user: " + server.user +
            f"\n      password: ''\n      dbname: {self.database}\n      schema: main\n      threads: 1\n")
        self.env["CRASH_PG_PORT"] = str(server.port)

    def edit(self, sql: str, params: tuple = ()) -> list[tuple]:
        return postgres_server.execute(self.server, self.database, sql, params)

    def set_audience_range(self, start: int, stop: int) -> None:
        # member_fingerprint left 0: the pusher's copy computes its own
        fingerprint = ", 0" if self.edit("select 1 from information_schema.columns where table_name = 'aud_cart' "
                                         "and column_name = 'member_fingerprint'") else ""
        self.edit("delete from main.aud_cart")
        self.edit("insert into main.aud_cart select 'c' || lpad(i::text, 6, '0'), "
                  "encode(sha256(convert_to('user' || i || '@example.com', 'UTF8')), 'hex'), null, 'aud_cart', "
                  f"'Cart', null, timestamp '2024-01-01'{fingerprint} from generate_series(%s, %s) as i",
                  (start, stop - 1))

    def audience(self) -> dict[str, tuple]:
        return {row[0]: (row[1], row[2]) for row in self.edit(
            "select customer_id, email_sha256, phone_sha256 from main.aud_cart")}


def churn_postgres(project: PostgresProject, rng: random.Random) -> None:
    """About 10% leave, 10% join and 2% change email, as tests/pusher/test_crash.py's churn."""
    project.edit("delete from main.aud_cart where mod(abs(hashtext(customer_id || %s)), 10) = 0", (str(rng.random()),))
    start = rng.randrange(AUDIENCE, 10 * AUDIENCE)
    project.edit("insert into main.aud_cart (customer_id, email_sha256, phone_sha256, audience_name, list_name, "
                 "exclusivity_group, entered_at) select 'n' || i, encode(sha256(convert_to('n' || i, 'UTF8')), "
                 "'hex'), null, 'aud_cart', 'Cart', null, timestamp '2024-01-01' from generate_series(%s, %s) as i",
                 (start, start + AUDIENCE // 10 - 1))
    if project.edit("select 1 from information_schema.columns where table_name = 'aud_cart' "
                    "and column_name = 'member_fingerprint'"):
        project.edit("update main.aud_cart set member_fingerprint = 0 where member_fingerprint is null")
    project.edit("update main.aud_cart set email_sha256 = encode(sha256(convert_to(email_sha256 || %s, 'UTF8')), "
                 "'hex') where mod(abs(hashtext(customer_id || %s)), 50) = 0", (str(rng.random()), str(rng.random())))


@pytest.mark.parametrize("seed", [1, 2])
def test_sigkill_at_random_points_converges_on_postgres(tmp_path, postgres, seed):
    """Seed 1: the model carries member_fingerprint (PostgreSQL's own hash); seed 2: without."""
    project = PostgresProject(tmp_path, postgres, model_fingerprint=seed % 2 == 1)
    before = set(_local_copies())
    crash_and_converge(project, seed, churn=churn_postgres)
    # The killed runs' local copies (kill -9 skips their cleanup) were removed by the next run.
    left = [path.name for path in set(_local_copies()) - before if not _alive(_owner(path))]
    assert not left, f"local copies of killed runs were left behind: {left}"


def _local_copies() -> list[Path]:
    return list(Path(tempfile.gettempdir()).glob(f"{COPY_PREFIX}*"))


def _owner(path: Path) -> int:
    pid = path.name[len(COPY_PREFIX):].split("-")[0]
    return int(pid) if pid.isdigit() else 0


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        pass
    return True


class SparkProject(Project):
    """tests/pusher's project reading the Spark demo's metastore: its audience is the parquet of
    one demo model (aud_cart_abandon_0_1d), rewritten with the crash test's members."""

    MODEL = "aud_cart_abandon_0_1d"

    def __init__(self, root, spark_demo):
        super().__init__(root, model_fingerprint=True)
        self.tables = SparkTables(spark_demo.workdir / "spark-warehouse" / "retention.db")
        profiles = (REPO / "profiles.yml").read_text().replace("\nretention:\n", "\nproj:\n")
        (root / "profiles.yml").write_text(profiles.replace("env_var('DBT_TARGET', 'duckdb')", "'spark'"))
        self.env.update(spark_demo.env)
        manifest_file = root / "target" / "manifest.json"
        manifest = json.loads(manifest_file.read_text())
        manifest["nodes"]["model.proj.aud_cart"].update(database=None, schema="retention", alias=self.MODEL)
        manifest_file.write_text(json.dumps(manifest))

    def set_audience_range(self, start: int, stop: int) -> None:
        self.tables.edit(f"delete from retention.{self.MODEL}")
        self.tables.edit(f"insert into retention.{self.MODEL} select 'c' || lpad(cast(i as varchar), 6, '0'), "
                         "sha256('user' || cast(i as varchar) || '@example.com'), null, 'aud_cart', 'Cart', null, "
                         "timestamp '2024-01-01', 0 from range(?, ?) t(i)", (start, stop))

    def audience(self) -> dict[str, tuple]:
        return {row[0]: (row[1], row[2]) for row in self.tables.query(
            f"select customer_id, email_sha256, phone_sha256 from retention.{self.MODEL}")}


def churn_spark(project: SparkProject, rng: random.Random) -> None:
    model = f"retention.{project.MODEL}"
    project.tables.edit(f"delete from {model} where hash(customer_id || ?) % 10 = 0", (str(rng.random()),))
    start = rng.randrange(AUDIENCE, 10 * AUDIENCE)
    project.tables.edit(f"insert into {model} select 'n' || cast(i as varchar), sha256('n' || cast(i as varchar)), "
                        "null, 'aud_cart', 'Cart', null, timestamp '2024-01-01', 0 from range(?, ?) t(i)",
                        (start, start + AUDIENCE // 10))
    project.tables.edit(f"update {model} set email_sha256 = sha256(email_sha256 || ?) "
                        "where hash(customer_id || ?) % 50 = 0", (str(rng.random()), str(rng.random())))


def test_sigkill_at_random_points_converges_on_spark(tmp_path, spark_demo):
    project = SparkProject(tmp_path, spark_demo)
    model = project.tables.tables_dir / project.MODEL
    shutil.copytree(model, tmp_path / "backup")
    try:
        crash_and_converge(project, 3, churn=churn_spark)
    finally:
        shutil.rmtree(model)
        shutil.copytree(tmp_path / "backup", model)
