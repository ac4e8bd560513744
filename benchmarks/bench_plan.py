"""Benchmark: `pusher plan` on a 10M-member audience with 1% churn, and a no-change `pusher sync`.

Targets (from the issue): plan <= 3 s and <= 1 GB peak RSS; no-change sync <= 2 s.
Builds two DuckDB projects under the system temp dir (cached between runs; --rebuild to redo):
  churn/     audience of 10M; ledger of 10M of which 50k have left, 50k joined, 10k changed email
  nochange/  audience of 10M equal to its ledger
Each command runs in a fresh subprocess (`python -m pusher ...`), timed wall-clock, with
peak RSS from wait4(). Prints the figures and how they compare with the targets.

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
LEDGER_VERSION = 2          # members.fingerprint (integer diff); older cached files are rebuilt
# The engine before the integer fingerprints (string joins), measured by its author on this
# machine while busy; printed next to the new figures (the old code path no longer exists).
OLD = {"plan_seconds": (40.0, 48.0), "nochange_sync_seconds": (24.0, 36.0), "plan_rss_mb": (707.0, 707.0)}


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


def build(root: Path, members: int, churn: bool) -> None:
    """Audience and ledger made in SQL (a Python loop would take minutes)."""
    from pusher.ledger import Ledger
    from pusher.warehouse import Warehouse

    write_project(root)
    db = root / "warehouse.duckdb"
    db.unlink(missing_ok=True)
    leave = join = members // 200 if churn else 0          # 0.5% leave + 0.5% join = 1% churn
    changed = members // 1000 if churn else 0               # 0.1% change email
    wh = Warehouse.open_duckdb(db)
    Ledger(wh).ensure()
    wh.execute("""create table aud_bench as
        select 'c' || lpad(cast(i as varchar), 9, '0') as customer_id,
               sha256('user' || cast(i + case when i < ? then 1000000000 else 0 end as varchar) || '@example.com')
                   as email_sha256,
               cast(null as varchar) as phone_sha256, 'aud_bench' as audience_name, 'Bench' as list_name,
               cast(null as varchar) as exclusivity_group, timestamp '2024-01-01' as entered_at
        from range(?, ?) t(i)""", (leave + changed, leave, members + join))
    wh.execute("""insert into pusher_ledger.members
        select 'sync_bench', 'c' || lpad(cast(i as varchar), 9, '0'),
               sha256('user' || cast(i as varchar) || '@example.com'), null, null, null, 'bench', now(), null
        from range(0, ?) t(i)""", (members,))
    Ledger(wh).refresh_fingerprints()      # the same expression the pusher writes
    wh.execute("checkpoint")
    wh.close()
    (root / "built").write_text(json.dumps({"members": members, "churn": churn, "ledger": LEDGER_VERSION}))


def ensure(root: Path, members: int, churn: bool, rebuild: bool) -> None:
    marker = root / "built"
    wanted = {"members": members, "churn": churn, "ledger": LEDGER_VERSION}
    if not rebuild and marker.exists() and json.loads(marker.read_text()) == wanted:
        return
    started = time.perf_counter()
    build(root, members, churn)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "pusher-bench")
    options = parser.parse_args()

    churn_root, same_root = options.dir / "churn", options.dir / "nochange"
    ensure(churn_root, options.members, True, options.rebuild)
    ensure(same_root, options.members, False, options.rebuild)

    plan = measure(churn_root, options.runs, "plan")
    inner = plan_in_process(churn_root, options.runs)
    nochange = measure(same_root, options.runs, "sync")
    counts = plan["output"]["syncs"][0]["plan"]
    sync_out = nochange["output"]["syncs"][0]
    assert sync_out["requests"] == 0 and sync_out["status"] == "ok", sync_out

    figures = {"plan_seconds": plan["median_seconds"], "plan_rss_mb": plan["peak_rss_mb"],
               "nochange_sync_seconds": nochange["median_seconds"]}
    print(f"machine: {os.cpu_count()} cpus, python {sys.version.split()[0]}, duckdb {duckdb.__version__}")
    print(f"audience {counts['audience_size']:,}, ledger {counts['ledger_size']:,}: "
          f"+{counts['adds']:,} -{counts['removes']:,} ({counts['identifier_changes']:,} email changes)")
    print(f"pusher plan (whole process, median of {options.runs}): {plan['median_seconds']:.2f}s "
          f"[{plan['min_seconds']:.2f}-{plan['max_seconds']:.2f}], peak RSS {plan['peak_rss_mb']:.0f} MB")
    print(f"plan alone, in process (median): {inner:.2f}s")
    print(f"no-change pusher sync (whole process, median of {options.runs}): {nochange['median_seconds']:.2f}s, "
          f"peak RSS {nochange['peak_rss_mb']:.0f} MB, {sync_out['requests']} requests")
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} (1/5/15 min)")
    for name, target in TARGETS.items():
        verdict = "ok" if figures[name] <= target else "OVER TARGET"
        low, high = OLD[name]
        print(f"  {name}: {figures[name]:.2f} (target <= {target:g}) {verdict}; before: {low:g}-{high:g} "
              f"(x{low / figures[name]:.0f}-{high / figures[name]:.0f})")


if __name__ == "__main__":
    main()
