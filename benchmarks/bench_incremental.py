"""Benchmark incremental builds: a full build, then 1% new exports and an incremental build.

    .venv/bin/python benchmarks/bench_incremental.py --customers 1000000

Generates the world with scripts/generate_sources.py (Parquet, in a temporary folder), runs
`dbt run --full-refresh`, adds new exports (a `part-delta.parquet` next to each table's parts:
about 1% of each table's records exported again in one file half an hour after as_of, a fifth of
them with a newer status or value, a fifth with an older business timestamp, as a late export
would carry), runs `dbt run` (the incremental build), and prints the wall and CPU times of both
and their ratios, with the slowest models of each. `--verify` then rebuilds the same data with
--full-refresh and checks that every incremental model holds the same rows. `--command build`
times `dbt build` (models and their tests) instead of `dbt run`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parent.parent
GENERATOR = REPO / "scripts" / "generate_sources.py"
DBT = Path(sys.executable).parent / "dbt"
IDENTITY_MAP = "int_identity__store_account_map"

# table folder -> (id column, changed column and its new value SQL, business timestamp column)
DELTAS = {
    "store/customers": ("customer_id", ("accepts_marketing", "not accepts_marketing"), "updated_at"),
    "store/orders": ("order_id", ("financial_status", "'refunded'"), None),
    "store/order_lines": ("order_line_id", None, None),
    "store/refunds": ("refund_id", None, None),
    "subscriptions/subscription_events": ("event_id", ("status", "'paused'"), "changed_at"),
    "loyalty/loyalty_accounts": ("account_id", ("points_balance", "points_balance + 100"), "updated_at"),
    "returns/returns": ("return_id", ("status", "'received'"), "updated_at"),
    "reviews/reviews": ("review_id", None, None),
    "back_in_stock/back_in_stock_requests": ("request_id", None, None),
    "web_events/web_events": ("event_id", None, None),
}


def add_delta_exports(generated: Path, as_of: str, share_percent: int) -> int:
    """Write part-delta.parquet into every table folder; returns the rows written."""
    written = 0
    with duckdb.connect() as con:
        for folder, (id_column, change, timestamp_column) in DELTAS.items():
            parts = f"{generated}/{folder}/part-[0-9]*.parquet"
            columns = [row[0] for row in con.execute(f"describe select * from read_parquet('{parts}')").fetchall()]
            bucket = f"hash({id_column}, 'delta') % 100"
            # one new export file, written half an hour after as_of (within the future tolerance)
            replaced = {"_exported_at": f"timestamp '{as_of}' + interval 30 minute"}
            if change:
                # a fifth of the re-exported records changed since
                replaced[change[0]] = f"case when hash({id_column}, 'change') % 5 = 0 then {change[1]} else {change[0]} end"
            if timestamp_column:
                # a fifth carry an older business timestamp: a late export must not revert anything
                replaced[timestamp_column] = (f"case when hash({id_column}, 'late') % 5 = 1 "
                                              f"then {timestamp_column} - interval 30 day else {timestamp_column} end")
            select = ", ".join(f"{replaced[name]} as {name}" if name in replaced else name for name in columns)
            target = generated / folder / "part-delta.parquet"
            written += con.execute(
                f"copy (select {select} from read_parquet('{parts}') where {bucket} < {share_percent}) "
                f"to '{target}' (format parquet)").fetchone()[0]
    return written


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def dbt(tmp: Path, env: dict[str, str], *arguments: str) -> tuple[float, float, list[dict]]:
    """Runs dbt; returns its wall time, its CPU time (user + system: steadier than wall time on
    a busy machine) and its node results."""
    started, cpu_started = time.perf_counter(), children_cpu_seconds()
    completed = subprocess.run(
        [str(DBT), *arguments, "--profiles-dir", str(REPO), "--project-dir", str(REPO),
         "--target-path", str(tmp / "target")],
        cwd=REPO, env=env, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - started, children_cpu_seconds() - cpu_started
    results = json.loads((tmp / "target" / "run_results.json").read_text())["results"]
    failed = [r["unique_id"] for r in results if r["status"] not in ("success", "pass", "no-op")]
    if completed.returncode != 0 or failed:
        sys.stderr.write(completed.stdout[-4000:] + completed.stderr[-2000:])
        raise SystemExit(f"dbt {' '.join(arguments)} failed: {failed[:5]}")
    return wall, cpu, results


def slowest(results: list[dict], count: int = 6) -> str:
    models = [r for r in results if r["unique_id"].startswith("model.")]
    top = sorted(models, key=lambda r: -r["execution_time"])[:count]
    return ", ".join(f"{r['unique_id'].split('.')[-1]} {r['execution_time']:.0f}s" for r in top)


def node_seconds(results: list[dict], models: list[str]) -> float:
    return sum(r["execution_time"] for r in results if r["unique_id"].split(".")[-1] in models)


def incremental_models(tmp: Path) -> list[str]:
    manifest = json.loads((tmp / "target" / "manifest.json").read_text())
    return sorted(node["name"] for node in manifest["nodes"].values()
                  if node["resource_type"] == "model" and node["config"]["materialized"] == "incremental"
                  and node["name"] != IDENTITY_MAP)


def snapshot(database: Path, models: list[str], copy_to: Path) -> None:
    with duckdb.connect(str(copy_to)) as con:
        con.execute(f"attach '{database}' as built (read_only)")
        for model in models:
            con.execute(f"create or replace table {model} as select * from built.main.{model}")


def differences(incremental: Path, full: Path, models: list[str]) -> dict[str, int]:
    with duckdb.connect(str(incremental)) as con:
        con.execute(f"attach '{full}' as full_build (read_only)")
        return {model: con.execute(
            f"select count(*) from ((select * from {model} except all select * from full_build.main.{model}) "
            f"union all (select * from full_build.main.{model} except all select * from {model}))").fetchone()[0]
            for model in models}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--as-of", default="2026-11-20 12:00:00")
    parser.add_argument("--share-percent", type=int, default=1, help="records exported again (default 1)")
    parser.add_argument("--command", choices=["run", "build"], default="run")
    parser.add_argument("--verify", action="store_true",
                        help="rebuild the same data with --full-refresh and compare the incremental models")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-incremental-"))
    generated = tmp / "generated"
    env = {**os.environ, "PUSHER_SOURCE_DATA": "parquet", "PUSHER_PARQUET_PATH": str(generated),
           "PUSHER_AS_OF": args.as_of, "PUSHER_DUCKDB_PATH": str(tmp / "warehouse.duckdb"),
           "DBT_LOG_PATH": str(tmp / "logs"), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    try:
        subprocess.run([sys.executable, str(GENERATOR), "--customers", str(args.customers), "--seed",
                        str(args.seed), "--as-of", args.as_of, "--out", str(generated)],
                       check=True, capture_output=True)
        full_wall, full_cpu, full_results = dbt(tmp, env, args.command, "--full-refresh")
        delta_rows = add_delta_exports(generated, args.as_of, args.share_percent)
        incremental_wall, incremental_cpu, incremental_results = dbt(tmp, env, args.command)
        print(f"customers={args.customers:,} command='dbt {args.command}' new_export_rows={delta_rows:,} "
              f"full_seconds={full_wall:.1f} incremental_seconds={incremental_wall:.1f} "
              f"incremental/full={incremental_wall / full_wall:.2f} (CPU: full {full_cpu:.1f} s, incremental "
              f"{incremental_cpu:.1f} s, incremental/full={incremental_cpu / full_cpu:.2f})")
        models = incremental_models(tmp)
        print(f"  the incremental models ({', '.join(models)}), summed node times: full "
              f"{node_seconds(full_results, models):.1f} s, incremental {node_seconds(incremental_results, models):.1f} s")
        print(f"  full build, slowest models: {slowest(full_results)}")
        print(f"  incremental build, slowest models: {slowest(incremental_results)}")
        if args.verify:
            kept = tmp / "incremental.duckdb"
            snapshot(tmp / "warehouse.duckdb", models, kept)
            refresh_wall, refresh_cpu, _ = dbt(tmp, env, args.command, "--full-refresh")
            diff = differences(kept, tmp / "warehouse.duckdb", models)
            print(f"  verify: full rebuild of the same data {refresh_wall:.1f} s, CPU {refresh_cpu:.1f} s "
                  f"(incremental/full={incremental_wall / refresh_wall:.2f}); rows differing per "
                  f"incremental model: {diff}")
            if any(diff.values()):
                return 1
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
