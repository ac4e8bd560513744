"""Benchmark: `pusher plan` on a 10M-member audience with 1% churn, and a no-change `pusher sync`.

Targets (from the issue): plan <= 3 s and <= 1 GB peak RSS; no-change sync <= 2 s.
Builds DuckDB projects under the system temp dir (cached between runs; --rebuild to redo):
  churn/     audience of 10M; ledger of 10M of which 50k have left, 50k joined, 10k changed email
  nochange/  audience of 10M equal to its ledger
each twice: as dbt builds audiences (with the member_fingerprint column) and, suffixed
_computed, without it (the pusher hashes the three identifier strings itself), so the two
are compared in the same run. Each command runs in a fresh subprocess (`python -m pusher
...`), timed wall-clock, with peak RSS from wait4(). Prints the figures and how they compare
with the targets.

    .venv/bin/python benchmarks/bench_plan.py [--members 10000000] [--runs 5] [--rebuild]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

TARGETS = {"plan_seconds": 3.0, "plan_rss_mb": 1024.0, "nochange_sync_seconds": 2.0}
LIST = "FILE__Bench_Audience__None"
LEDGER_VERSION = 4          # the ledger in its own state file (pusher.state); older cached files are rebuilt
# The engine before the integer fingerprints (string joins), measured by its author on this
# machine while busy; printed for the record (that code path no longer exists).
STRING_JOINS = {"plan_seconds": "40-48", "nochange_sync_seconds": "24-36"}


def write_project(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "dbt_project.yml").write_text("name: bench\nprofile: bench\nconfig-version: 2\n")
    (root / "profiles.yml").write_text("bench:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
                                       "      path: warehouse.duckdb\n")
    (root / "target").mkdir(exist_ok=True)
    manifest = {
        "nodes": {"model.bench.aud_bench": {"name": "aud_bench", "alias": "aud_bench", "database": "warehouse",
                                            "schema": "main", "resource_type": "model"}},
        "exposures": {"exposure.bench.sync_bench": {
            "name": "sync_bench", "depends_on": {"nodes": ["model.bench.aud_bench"]},
            "meta": {"pusher": {"destination": "file", "kind": "audience", "list_name": LIST}}}},
        "parent_map": {"model.bench.aud_bench": []},
    }
    (root / "target" / "manifest.json").write_text(json.dumps(manifest))


def build(root: Path, members: int, churn: bool, model_fingerprint: bool) -> None:
    """Audience and ledger made in SQL (a Python loop would take minutes)."""
    from pusher.ledger import Ledger, table
    from pusher.state import state_path
    from pusher.warehouse import Warehouse

    write_project(root)
    db = root / "warehouse.duckdb"
    state = state_path(root, {})
    for path in (db, state, state.with_name(state.name + ".wal")):
        path.unlink(missing_ok=True)
    leave = join = members // 200 if churn else 0          # 0.5% leave + 0.5% join = 1% churn
    changed = members // 1000 if churn else 0               # 0.1% change email
    wh = Warehouse.open_duckdb(db, state)
    Ledger(wh).ensure()
    wh.execute("""create table aud_bench as
        select 'c' || lpad(cast(i as varchar), 9, '0') as customer_id,
               sha256('user' || cast(i + case when i < ? then 1000000000 else 0 end as varchar) || '@example.com')
                   as email_sha256,
               cast(null as varchar) as phone_sha256, 'aud_bench' as audience_name, 'Bench' as list_name,
               cast(null as varchar) as exclusivity_group, timestamp '2024-01-01' as entered_at
        from range(?, ?) t(i)""", (leave + changed, leave, members + join))
    if model_fingerprint:          # what macros/member_fingerprint.sql adds to every dbt-built audience
        wh.execute("create or replace table aud_bench as select *, "
                   "cast(hash(customer_id, email_sha256, phone_sha256) >> 1 as bigint) as member_fingerprint "
                   "from aud_bench")
    wh.execute(f"""insert into {table('members')}
        select 'sync_bench', 'c' || lpad(cast(i as varchar), 9, '0'),
               sha256('user' || cast(i as varchar) || '@example.com'), null, null, null, 'bench', now(), null
        from range(0, ?) t(i)""", (members,))
    Ledger(wh).refresh_fingerprints()      # the same expression the pusher writes
    wh.execute("checkpoint")
    wh.execute("checkpoint pusher_state")
    wh.close()
    (root / "built").write_text(json.dumps(wanted(members, churn, model_fingerprint)))


def wanted(members: int, churn: bool, model_fingerprint: bool) -> dict:
    return {"members": members, "churn": churn, "model_fingerprint": model_fingerprint, "ledger": LEDGER_VERSION}


def ensure(root: Path, members: int, churn: bool, model_fingerprint: bool, rebuild: bool) -> None:
    marker = root / "built"
    if not rebuild and marker.exists() and json.loads(marker.read_text()) == wanted(members, churn, model_fingerprint):
        return
    started = time.perf_counter()
    build(root, members, churn, model_fingerprint)
    print(f"built {root.name} ({members:,} members) in {time.perf_counter() - started:.1f}s", file=sys.stderr)


def run_pusher(root: Path, *args: str) -> tuple[float, float, dict]:
    """Wall seconds, peak RSS in MB, parsed JSON output of one `python -m pusher` process."""
    env = {**os.environ, "PUSHER_FILE_DIR": str(root / "destination"), "DBT_PROFILES_DIR": str(root)}
    env.pop("DBT_TARGET", None)
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "pusher", *args, "--json", "--project-dir", str(root)],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = process.communicate()
    elapsed = time.perf_counter() - started
    # communicate() has reaped the child; RUSAGE_CHILDREN's ru_maxrss is the max over children,
    # so each measurement runs in its own helper process (see measure()).
    import resource
    rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if process.returncode not in (0,):
        raise SystemExit(f"pusher {' '.join(args)} exited {process.returncode}: {err.decode()[-2000:]}")
    return elapsed, rss_mb, json.loads(out)


def measure(root: Path, runs: int, *args: str) -> dict:
    """Run in a fresh interpreter per measurement so ru_maxrss belongs to that run alone."""
    code = ("import json,sys; sys.path.insert(0, %r); import bench_plan as b; from pathlib import Path; "
            "print(json.dumps(b.run_pusher(Path(%r), *%r)))") % (str(Path(__file__).parent), str(root), args)
    times, peaks, output = [], [], None
    for _ in range(runs):
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(result.stderr[-2000:])
        elapsed, rss, output = json.loads(result.stdout)
        times.append(elapsed)
        peaks.append(rss)
    return {"median_seconds": statistics.median(times), "min_seconds": min(times), "max_seconds": max(times),
            "peak_rss_mb": max(peaks), "output": output}


def plan_in_process(root: Path, runs: int) -> float:
    """The plan alone (no interpreter start-up or imports): median seconds."""
    from pusher.config import load_project
    from pusher.sync import Engine
    from pusher.warehouse import Warehouse, load_profile

    os.environ["PUSHER_FILE_DIR"] = str(root / "destination")
    times = []
    for _ in range(runs):
        wh = Warehouse.connect(load_profile(root, root, env={}))
        engine = Engine(load_project(root), wh)
        started = time.perf_counter()
        engine.plan_all(engine.project.syncs)
        times.append(time.perf_counter() - started)
        wh.close()
    return statistics.median(times)


def reference_join_seconds(runs: int) -> float:
    """How fast the machine is right now: a fixed 10M x 10M integer hash join in DuckDB (the
    core of a plan). Shared machines vary by 1.5x from hour to hour; read the figures with it."""
    conn = duckdb.connect()
    conn.execute("set threads = 2")
    conn.execute("set enable_progress_bar = false")
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        conn.execute("select count(*) from range(10000000) a(i) full outer join range(60000, 10060000) b(i) "
                     "on a.i = b.i where a.i is null or b.i is null").fetchall()
        times.append(time.perf_counter() - started)
    conn.close()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "pusher-bench")
    options = parser.parse_args()

    roots = {}
    for churn in (True, False):
        for model_fingerprint in (True, False):
            name = ("churn" if churn else "nochange") + ("" if model_fingerprint else "_computed")
            roots[name] = options.dir / name
            ensure(roots[name], options.members, churn, model_fingerprint, options.rebuild)

    # Interleaved, so that both variants see the same machine load.
    plan, plan_computed, nochange, nochange_computed = [], [], [], []
    for _ in range(options.runs):
        plan.append(measure(roots["churn"], 1, "plan"))
        plan_computed.append(measure(roots["churn_computed"], 1, "plan"))
        nochange.append(measure(roots["nochange"], 1, "sync"))
        nochange_computed.append(measure(roots["nochange_computed"], 1, "sync"))
    inner = plan_in_process(roots["churn"], options.runs)
    reference = reference_join_seconds(options.runs)
    counts = plan[0]["output"]["syncs"][0]["plan"]
    same = ("audience_size", "ledger_size", "adds", "removes", "identifier_changes", "departures")
    assert all(counts[k] == plan_computed[0]["output"]["syncs"][0]["plan"][k] for k in same), "variants disagree"
    for result in nochange + nochange_computed:
        sync_out = result["output"]["syncs"][0]
        assert sync_out["requests"] == 0 and sync_out["status"] == "ok", sync_out

    def median(results: list[dict]) -> float:
        return statistics.median(r["median_seconds"] for r in results)

    def spread(results: list[dict]) -> str:
        times = [r["median_seconds"] for r in results]
        return f"[{min(times):.2f}-{max(times):.2f}]"

    figures = {"plan_seconds": median(plan), "plan_rss_mb": max(r["peak_rss_mb"] for r in plan),
               "nochange_sync_seconds": median(nochange)}
    print(f"machine: {os.cpu_count()} cpus, python {sys.version.split()[0]}, duckdb {duckdb.__version__}")
    print(f"audience {counts['audience_size']:,}, ledger {counts['ledger_size']:,}: "
          f"+{counts['adds']:,} -{counts['removes']:,} ({counts['identifier_changes']:,} email changes)")
    print(f"pusher plan, whole process, median of {options.runs}:")
    print(f"  member_fingerprint from dbt: {median(plan):.2f}s {spread(plan)}, "
          f"peak RSS {figures['plan_rss_mb']:.0f} MB")
    print(f"  computed by the pusher:      {median(plan_computed):.2f}s {spread(plan_computed)}, "
          f"peak RSS {max(r['peak_rss_mb'] for r in plan_computed):.0f} MB "
          f"(x{median(plan_computed) / median(plan):.2f} of the former)")
    print(f"  plan alone, in process (member_fingerprint from dbt): {inner:.2f}s")
    print(f"no-change pusher sync, whole process, median of {options.runs} (0 requests):")
    print(f"  member_fingerprint from dbt: {median(nochange):.2f}s {spread(nochange)}, "
          f"peak RSS {max(r['peak_rss_mb'] for r in nochange):.0f} MB")
    print(f"  computed by the pusher:      {median(nochange_computed):.2f}s {spread(nochange_computed)} "
          f"(x{median(nochange_computed) / median(nochange):.2f} of the former)")
    print(f"reference 10M x 10M integer join in DuckDB (machine speed now): {reference:.2f}s")
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} (1/5/15 min)")
    for name, target in TARGETS.items():
        verdict = "ok" if figures[name] <= target else "OVER TARGET"
        before = f"; with string joins: {STRING_JOINS[name]}" if name in STRING_JOINS else ""
        print(f"  {name}: {figures[name]:.2f} (target <= {target:g}) {verdict}{before}")


if __name__ == "__main__":
    main()
