"""`dbt build` of one generated world per engine, side by side: DuckDB reading the generator's
Parquet directly, PostgreSQL and Spark after loading the same files into their raw tables.

    .venv/bin/python benchmarks/bench_engines.py --customers 100000

Needs the `engines` extra, PostgreSQL's server binaries and Java 17. PostgreSQL: a throwaway
server (the one the engine tests use), each generated table loaded with COPY. Spark: the local
session of the committed `spark` target (its warehouse and metastore in a temporary directory),
each table read by pyspark and saved as a parquet table. Each builds with its committed target;
the raw tables stand where the seeds would (the seeds are not built). Prints one line per
engine: load time, build time and the nodes that did not pass.

Then the pusher on each engine (--members, default 1M): an audience table made in the engine
by SQL, a first `pusher sync` to the file destination (which fills the ledger), a no-change
`pusher sync` (0 requests), then 1% churn (0.5% leave, 0.5% join, 0.1% change email: the
table made again) and `pusher plan`. Each command is a whole `python -m pusher` process, timed
wall-clock (median of --runs); on PostgreSQL and Spark that includes reading the audience
into the pusher's local DuckDB copy. The plans must agree across engines.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import duckdb
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from tests.engines import postgres_server  # noqa: E402  (the engine tests' throwaway server)

DBT = Path(sys.executable).parent / "dbt"
PG_TYPES = {"VARCHAR": "text", "TIMESTAMP": "timestamp", "BOOLEAN": "boolean", "INTEGER": "integer",
            "BIGINT": "bigint", "DOUBLE": "double precision", "DATE": "date"}


def dbt_build(workdir: Path, target: str, env: dict[str, str], *extra: str) -> tuple[float, list[str]]:
    started = time.perf_counter()
    completed = subprocess.run(
        [str(DBT), "build", "--target", target, "--profiles-dir", str(REPO), "--project-dir", str(REPO),
         "--target-path", str(workdir / "target"), *extra],
        cwd=workdir, capture_output=True, text=True,
        env={**os.environ, "DBT_LOG_PATH": str(workdir / "logs"), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", **env})
    seconds = time.perf_counter() - started
    results_file = workdir / "target" / "run_results.json"
    if not results_file.exists():
        sys.stderr.write(completed.stdout[-3000:] + completed.stderr[-2000:])
        raise SystemExit(f"dbt build on {target} did not run")
    results = json.loads(results_file.read_text())["results"]
    return seconds, [r["unique_id"] for r in results if r["status"] not in ("success", "pass", "no-op")]


def load_into_postgres(server, database: str, schema: str, world: Path) -> tuple[float, int]:
    """Every <source>/<table>/*.parquet into <schema>.raw_<source>__<table>, by COPY."""
    import psycopg2

    started, rows = time.perf_counter(), 0
    connection = psycopg2.connect(host=server.host, port=server.port, user=server.user, dbname=database)
    reader = duckdb.connect()
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(f"create schema if not exists {schema}")
            for folder in sorted(path for path in world.glob("*/*") if path.is_dir()):
                table = f"{schema}.raw_{folder.parent.name}__{folder.name}"
                relation = reader.sql(f"select * from read_parquet('{folder}/*.parquet')")
                columns = ", ".join(
                    f"{name} {PG_TYPES.get(str(kind), 'numeric' if str(kind).startswith('DECIMAL') else 'text')}"
                    for name, kind in zip(relation.columns, relation.types))
                cursor.execute(f"drop table if exists {table}; create table {table} ({columns})")
                csv_file = Path(tempfile.mkstemp(suffix=".csv")[1])
                try:
                    reader.execute(f"copy (select * from read_parquet('{folder}/*.parquet')) to '{csv_file}' "
                                   "(header, delimiter ',')")
                    with csv_file.open() as handle:
                        cursor.copy_expert(f"copy {table} from stdin with (format csv, header)", handle)
                    rows += cursor.rowcount
                finally:
                    csv_file.unlink()
    finally:
        connection.close()
        reader.close()
    return time.perf_counter() - started, rows


def spark_child(*arguments: str, env: dict[str, str]) -> float:
    """This script again as a child process that opens the `spark` target's local session
    (see spark_session): the embedded metastore admits one Spark at a time, and the dbt build
    or pusher that follows starts its own. Returns its wall seconds."""
    started = time.perf_counter()
    subprocess.run([sys.executable, __file__, *arguments], check=True, env={**os.environ, **env})
    return time.perf_counter() - started


def spark_session():
    """A session built as dbt-spark's session method builds it (Hive support, the target's
    server_side_parameters), so dbt and the pusher find the tables it writes."""
    from dbt.config.profile import Profile
    from dbt.config.renderer import ProfileRenderer
    from dbt_common.context import set_invocation_context
    from pyspark.sql import SparkSession

    set_invocation_context(dict(os.environ))       # dbt's env_var() reads the invocation's environment
    profile = yaml.safe_load((REPO / "profiles.yml").read_text())["retention"]
    _, target = Profile.render_profile(profile, "retention", "spark", ProfileRenderer({}))
    builder = SparkSession.builder.enableHiveSupport()
    for key, value in target["server_side_parameters"].items():
        builder = builder.config(key, str(value))
    return builder.getOrCreate()


def spark_load_child(world: Path, schema: str) -> None:
    """Every <source>/<table>/*.parquet into <schema>.raw_<source>__<table>, a parquet table."""
    spark = spark_session()
    try:
        spark.sql(f"create database if not exists {schema}")
        for folder in sorted(path for path in world.glob("*/*") if path.is_dir()):
            table = f"{schema}.raw_{folder.parent.name}__{folder.name}"
            spark.read.parquet(str(folder)).write.mode("overwrite").format("parquet").saveAsTable(table)
    finally:
        spark.stop()


def spark_sql_child(statements: list[str]) -> None:
    spark = spark_session()
    try:
        for statement in statements:
            spark.sql(statement)
    finally:
        spark.stop()


def raw_rows(world: Path) -> int:
    return duckdb.sql(f"select count(*) from read_parquet('{world}/*/*/*.parquet')").fetchall()[0][0]


# -- the pusher on each engine ------------------------------------------------------------------
LIST = "FILE__Bench_Audience__None"
# Per engine: rows numbered i from `start` to `stop` (exclusive), the text type, SHA-256 as hex,
# and the member_fingerprint dbt writes (macros/member_fingerprint.sql).
DIALECTS = {
    "duckdb": {"rows": "range({start}, {stop}) as t(i)", "text": "varchar", "sha256": "sha256({})",
               "fingerprint": "cast(hash(customer_id, email_sha256, phone_sha256) >> 1 as bigint)"},
    "postgres": {"rows": "generate_series(cast({start} as bigint), {stop} - 1) as t(i)", "text": "text",
                 "sha256": "encode(sha256(convert_to({}, 'UTF8')), 'hex')",
                 "fingerprint": "hashtextextended(coalesce(length(customer_id) || ':' || customer_id, 'N') || '|' || "
                                "coalesce(length(email_sha256) || ':' || email_sha256, 'N') || '|' || "
                                "coalesce(length(phone_sha256) || ':' || phone_sha256, 'N'), 0)"},
    "spark": {"rows": "range({start}, {stop}) as t(i)", "text": "string", "sha256": "sha2({}, 256)",
              "fingerprint": "xxhash64(customer_id, email_sha256, phone_sha256)", "using": " using parquet"},
}


def audience_statements(engine: str, relation: str, members: int, churn: bool) -> list[str]:
    """The audience as bench_plan.py makes it: members 0..n-1, or with 1% churn against them
    (0.5% leave, 0.5% join, 0.1% change email)."""
    sql = DIALECTS[engine]
    leave = join = members // 200 if churn else 0
    changed = members // 1000 if churn else 0
    email = f"'user' || cast(i + case when i < {leave + changed} then 1000000000 else 0 end as {sql['text']}) " \
            "|| '@example.com'"
    return [f"drop table if exists {relation}", f"""create table {relation}{sql.get('using', '')} as
        select *, {sql['fingerprint']} as member_fingerprint from (
            select 'c' || lpad(cast(i as {sql['text']}), 9, '0') as customer_id,
                   {sql['sha256'].format(email)} as email_sha256,
                   cast(null as {sql['text']}) as phone_sha256, 'aud_bench' as audience_name,
                   'Bench' as list_name, cast(null as {sql['text']}) as exclusivity_group,
                   timestamp '2024-01-01' as entered_at
            from {sql['rows'].format(start=leave, stop=members + join)}
        ) as members"""]


class PusherProject:
    """A pusher project over one engine: the committed profile's target, a hand-written
    manifest with one file-destination audience (as bench_plan.py writes one)."""

    def __init__(self, root: Path, engine: str, env: dict[str, str], database: str | None, schema: str,
                 run_sql):
        self.root, self.engine, self.run_sql = root, engine, run_sql
        self.relation = f"{schema}.aud_bench"
        self.env = {**os.environ, **env, "DBT_TARGET": engine, "DBT_PROFILES_DIR": str(REPO),
                    "PUSHER_FILE_DIR": str(root / "destination")}
        (root / "target").mkdir(parents=True)
        (root / "dbt_project.yml").write_text("name: bench\nprofile: retention\nconfig-version: 2\n")
        manifest = {
            "nodes": {"model.bench.aud_bench": {"name": "aud_bench", "alias": "aud_bench", "database": database,
                                                "schema": schema, "resource_type": "model"}},
            "exposures": {"exposure.bench.sync_bench": {
                "name": "sync_bench", "depends_on": {"nodes": ["model.bench.aud_bench"]},
                "meta": {"pusher": {"destination": "file", "kind": "audience", "list_name": LIST}}}},
            "parent_map": {"model.bench.aud_bench": []},
        }
        (root / "target" / "manifest.json").write_text(json.dumps(manifest))

    def make_audience(self, members: int, churn: bool) -> None:
        self.run_sql(audience_statements(self.engine, self.relation, members, churn))

    def pusher(self, command: str) -> tuple[float, dict]:
        started = time.perf_counter()
        completed = subprocess.run([sys.executable, "-m", "pusher", command, "--json", "--project-dir",
                                    str(self.root)], env=self.env, cwd=self.root, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if completed.returncode != 0:
            raise SystemExit(f"pusher {command} on {self.engine} exited {completed.returncode}: "
                             f"{failure_message(completed.stdout, completed.stderr)}")
        return seconds, json.loads(completed.stdout)["syncs"][0]


def failure_message(stdout: str, stderr: str, limit: int = 800) -> str:
    """Why a pusher process failed: its --json error when it reported one, else the exception
    line of its traceback (with a JVM's first `Caused by:`), not the stack frames after it."""
    try:
        error = json.loads(stdout.strip().splitlines()[-1]).get("error")
    except (ValueError, IndexError, AttributeError):
        error = None
    if error:
        return error[:limit]
    lines = stderr.splitlines()
    start = max((i for i, line in enumerate(lines) if line.startswith("Traceback")), default=None)
    if start is None:
        kept = [line.strip() for line in lines if line.strip()][-3:]
        return " | ".join(kept)[:limit]
    after = [line for line in lines[start + 1:] if line.strip()]
    message = next((i for i, line in enumerate(after) if not line.startswith(" ")), None)
    if message is None:
        return after[-1].strip()[:limit] if after else "no message"
    text = after[message].strip()
    caused = next((line.strip() for line in after[message + 1:] if line.strip().startswith("Caused by:")), None)
    return (text + (f" | {caused}" if caused else ""))[:limit]


def progress(engine: str, **figures) -> None:
    """As each figure arrives (stderr), so a long run that fails late still shows the rest."""
    print(f"{engine}: " + ", ".join(f"{name} {value}" for name, value in figures.items()), file=sys.stderr,
          flush=True)


def bench_pusher(project: PusherProject, members: int, runs: int) -> dict:
    """The pusher's figures, or why the pusher could not run on this engine (the build's
    figures still count)."""
    figures: dict = {}
    try:
        pusher_figures(project, members, runs, figures)
    except SystemExit as exc:
        progress(project.engine, pusher_failed=str(exc))
        figures["pusher_failed"] = str(exc)
    return figures


def pusher_figures(project: PusherProject, members: int, runs: int, figures: dict) -> None:
    project.make_audience(members, churn=False)
    first_seconds, first = project.pusher("sync")
    assert first["status"] == "ok" and first["plan"]["adds"] == members, first
    nochange = []
    for _ in range(runs):
        seconds, again = project.pusher("sync")
        assert again["status"] == "ok" and again["requests"] == 0, again
        nochange.append(seconds)
    figures.update(first_sync=first_seconds, nochange_sync=statistics.median(nochange))
    progress(project.engine, first_sync_s=round(first_seconds, 1), nochange_sync_s=[round(x, 2) for x in nochange])
    project.make_audience(members, churn=True)
    plans, plan = [], {}
    for _ in range(runs):
        seconds, plan = project.pusher("plan")
        plans.append(seconds)
    progress(project.engine, plan_s=[round(x, 2) for x in plans])
    figures.update(plan=statistics.median(plans),
                   counts={key: plan["plan"][key] for key in ("audience_size", "ledger_size", "adds", "removes")})


# -- the engines --------------------------------------------------------------------------------
ENGINES = ("duckdb", "postgres", "spark")


def bench_duckdb(stack: ExitStack, workdir: Path, world: Path, args) -> dict:
    seconds, failed = dbt_build(workdir, "duckdb", {
        "PUSHER_SOURCE_DATA": "parquet", "PUSHER_PARQUET_PATH": str(world), "PUSHER_AS_OF": args.as_of,
        "PUSHER_DUCKDB_PATH": str(workdir / "bench.duckdb")})
    progress("duckdb", build_s=round(seconds, 1), not_passing=len(failed))
    root = workdir / "pusher"
    path = root / "bench.duckdb"

    def run_sql(statements: list[str]) -> None:
        with duckdb.connect(str(path)) as connection:
            for statement in statements:
                connection.execute(statement)

    project = PusherProject(root, "duckdb", {"PUSHER_DUCKDB_PATH": str(path)}, "bench", "main", run_sql)
    return {"load": 0.0, "build": seconds, "failed": failed, **bench_pusher(project, args.members, args.runs)}


def bench_postgres(stack: ExitStack, workdir: Path, world: Path, args) -> dict:
    bindir = postgres_server.server_bindir()
    if bindir is None:
        raise SystemExit("PostgreSQL server binaries not found (Debian: apt-get install postgresql)")
    server = postgres_server.start(bindir)
    stack.callback(postgres_server.stop, bindir, server)
    postgres_server.create_database(server, "bench")
    load_seconds, _ = load_into_postgres(server, "bench", "retention", world)
    seconds, failed = dbt_build(workdir, "postgres", {
        **server.env("bench"), "PUSHER_PG_SCHEMA": "retention", "PUSHER_SOURCE_DATA": "seeds",
        "PUSHER_AS_OF": args.as_of}, "--exclude", "resource_type:seed")
    progress("postgres", load_s=round(load_seconds, 1), build_s=round(seconds, 1), not_passing=len(failed))
    postgres_server.execute(server, "bench", "create schema pusher_bench")

    def run_sql(statements: list[str]) -> None:
        for statement in statements:
            postgres_server.execute(server, "bench", statement)

    project = PusherProject(workdir / "pusher", "postgres", {**server.env("bench"), "PUSHER_PG_SCHEMA": "pusher_bench"},
                            "bench", "pusher_bench", run_sql)
    return {"load": load_seconds, "build": seconds, "failed": failed,
            **bench_pusher(project, args.members, args.runs)}


def bench_spark(stack: ExitStack, workdir: Path, world: Path, args) -> dict:
    spark_env = {"PUSHER_SPARK_DIR": str(workdir), "PUSHER_SPARK_SCHEMA": "retention"}
    load_seconds = spark_child("--load-spark", str(world), env=spark_env)
    seconds, failed = dbt_build(workdir, "spark", {**spark_env, "PUSHER_SOURCE_DATA": "seeds",
                                                   "PUSHER_AS_OF": args.as_of}, "--exclude", "resource_type:seed")
    progress("spark", load_s=round(load_seconds, 1), build_s=round(seconds, 1), not_passing=len(failed))

    def run_sql(statements: list[str]) -> None:
        spark_child("--spark-sql", json.dumps(statements), env=spark_env)

    project = PusherProject(workdir / "pusher", "spark", spark_env, None, "retention", run_sql)
    return {"load": load_seconds, "build": seconds, "failed": failed,
            **bench_pusher(project, args.members, args.runs)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--as-of", default="2026-11-20 12:00:00")
    parser.add_argument("--members", type=int, default=1_000_000, help="audience size for the pusher")
    parser.add_argument("--runs", type=int, default=3, help="pusher runs per figure (the median is printed)")
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated, from: " + ", ".join(ENGINES))
    parser.add_argument("--load-spark", type=Path, help=argparse.SUPPRESS)    # spark_child's jobs
    parser.add_argument("--spark-sql", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load_spark:
        spark_load_child(args.load_spark, "retention")
        return 0
    if args.spark_sql:
        spark_sql_child(json.loads(args.spark_sql))
        return 0
    engines = [name.strip() for name in args.engines.split(",") if name.strip()]
    if not engines or set(engines) - set(ENGINES):
        raise SystemExit(f"--engines takes a comma-separated list from: {', '.join(ENGINES)}")
    benches = {"duckdb": bench_duckdb, "postgres": bench_postgres, "spark": bench_spark}

    scratch = Path(tempfile.mkdtemp(prefix="bench-engines-"))
    world = scratch / "world"
    results = {}
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, scratch, ignore_errors=True)
        subprocess.run([sys.executable, str(REPO / "scripts" / "generate_sources.py"), "--customers",
                        str(args.customers), "--seed", str(args.seed), "--as-of", args.as_of, "--out", str(world)],
                       check=True, stdout=subprocess.DEVNULL)
        rows = raw_rows(world)
        for engine in engines:
            workdir = scratch / engine
            workdir.mkdir()
            results[engine] = benches[engine](stack, workdir, world, args)

    counts = {json.dumps(result["counts"], sort_keys=True) for result in results.values() if "counts" in result}
    assert len(counts) <= 1, f"the engines planned differently: {counts}"
    print(f"dbt: {args.customers:,} customers ({rows:,} raw rows; PostgreSQL and Spark load them into tables)")
    if counts:
        plan = json.loads(counts.pop())
        print(f"pusher: audience {plan['audience_size']:,}, ledger {plan['ledger_size']:,}, 1% churn "
              f"(+{plan['adds']:,} -{plan['removes']:,}); medians of {args.runs} whole processes")
    print(f"{'engine':<10} {'load s':>7} {'dbt build s':>12} {'not passing':>12} {'first sync s':>13} "
          f"{'no-change sync s':>17} {'plan s':>7}")
    for engine, result in results.items():
        failed = result["failed"]
        pusher = " ".join(f"{result[name]:>{width}.2f}" if name in result else f"{'n/a':>{width}}"
                          for name, width in (("first_sync", 13), ("nochange_sync", 17), ("plan", 7)))
        if "pusher_failed" in result:
            pusher += f"  ({result['pusher_failed']})"
        print(f"{engine:<10} {result['load']:>7.1f} {result['build']:>12.1f} {len(failed):>12} {pusher}"
              + (f"  ({', '.join(failed[:5])})" if failed else ""))
    print(f"load: {' '.join(f'{value:.2f}' for value in os.getloadavg())} (1/5/15 min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
