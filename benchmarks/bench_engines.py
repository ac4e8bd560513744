"""`dbt build` of one generated world per engine, side by side: DuckDB reading the generator's
Parquet directly, PostgreSQL after loading the same files into its raw tables.

    .venv/bin/python benchmarks/bench_engines.py --customers 100000

Needs the `engines` extra and PostgreSQL's server binaries: it starts a throwaway server (the
one the engine tests use), loads each generated table with COPY, and builds with the committed
`postgres` target; the raw tables stand where the seeds would (the seeds are not built).
Prints one line per engine: load time, build time and the nodes that did not pass.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--as-of", default="2026-11-20 12:00:00")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="bench-engines-"))
    world = scratch / "world"
    bindir = postgres_server.server_bindir()
    if bindir is None:
        raise SystemExit("PostgreSQL server binaries not found (Debian: apt-get install postgresql)")
    server = postgres_server.start(bindir)
    try:
        subprocess.run([sys.executable, str(REPO / "scripts" / "generate_sources.py"), "--customers",
                        str(args.customers), "--seed", str(args.seed), "--as-of", args.as_of, "--out", str(world)],
                       check=True, stdout=subprocess.DEVNULL)
        lines = []
        duck_dir = scratch / "duckdb"
        duck_dir.mkdir()
        seconds, failed = dbt_build(duck_dir, "duckdb", {
            "PUSHER_SOURCE_DATA": "parquet", "PUSHER_PARQUET_PATH": str(world), "PUSHER_AS_OF": args.as_of,
            "PUSHER_DUCKDB_PATH": str(duck_dir / "bench.duckdb")})
        lines.append(("duckdb", 0.0, seconds, failed))

        postgres_server.create_database(server, "bench")
        load_seconds, rows = load_into_postgres(server, "bench", "retention", world)
        pg_dir = scratch / "postgres"
        pg_dir.mkdir()
        seconds, failed = dbt_build(pg_dir, "postgres", {
            **server.env("bench"), "PUSHER_PG_SCHEMA": "retention", "PUSHER_SOURCE_DATA": "seeds",
            "PUSHER_AS_OF": args.as_of}, "--exclude", "resource_type:seed")
        lines.append(("postgres", load_seconds, seconds, failed))
    finally:
        postgres_server.stop(bindir, server)
        shutil.rmtree(scratch, ignore_errors=True)

    print(f"customers={args.customers:,} (PostgreSQL loaded {rows:,} raw rows)")
    print(f"{'engine':<10} {'load s':>8} {'dbt build s':>12}  not passing")
    for engine, load, build, failed in lines:
        print(f"{engine:<10} {load:>8.1f} {build:>12.1f}  {len(failed)}"
              + (f" ({', '.join(failed[:5])})" if failed else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
