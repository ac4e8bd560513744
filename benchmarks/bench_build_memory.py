"""`dbt build` of generated worlds on DuckDB: wall time, peak memory and the slowest models.

    .venv/bin/python benchmarks/bench_build_memory.py --customers 1000000 10000000
    .venv/bin/python benchmarks/bench_build_memory.py --customers 10000000 --memory-limit 2GB 4GB
    .venv/bin/python benchmarks/bench_build_memory.py --world data/generated --customers 100000

For each scale it generates a world (scripts/generate_sources.py, seed 42) into a temporary
folder, or reads --world, then runs one `dbt build` per --memory-limit (PUSHER_DBT_MEMORY_LIMIT)
on a fresh database file, and prints per build: wall time, peak RSS of the whole dbt process
tree (sampled from /proc every 0.2 s, and the kernel's exact peak of the largest process), the
peak size of DuckDB's spill directory, the nodes that did not pass, and the slowest models
(dbt's own timings from run_results.json) with the peak RSS sampled while each ran. `--select` runs only some models (`dbt run`,
after running their parents), to time and measure the heavy models alone. Linux only (/proc).
Everything it writes lives in a temporary folder, removed at the end unless --keep is given.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GENERATOR = REPO / "scripts" / "generate_sources.py"
DBT = Path(sys.executable).parent / "dbt"
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
SAMPLE_SECONDS = 0.2


def process_tree(root: int) -> list[int]:
    """The root process id and all its descendants, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, []))
    return tree


def resident_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as handle:
            return int(handle.read().split()[1]) * PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return 0  # the process ended between listing and reading


def folder_bytes(path: Path) -> int:
    total = 0
    for file in path.rglob("*") if path.exists() else ():
        try:
            total += file.stat().st_size
        except OSError:
            pass  # DuckDB removed the block file meanwhile
    return total


@dataclass
class Peaks:
    """The largest values seen while a process tree runs, sampled on a background thread."""

    root: int
    spill_dir: Path
    tree_rss: int = 0
    spill: int = 0
    timeline: list[tuple[float, int]] = field(default_factory=list)  # (epoch seconds, tree RSS)
    stop: threading.Event = field(default_factory=threading.Event)

    def watch(self) -> None:
        samples = 0
        while not self.stop.wait(SAMPLE_SECONDS):
            rss = sum(resident_bytes(pid) for pid in process_tree(self.root))
            self.tree_rss = max(self.tree_rss, rss)
            self.timeline.append((time.time(), rss))
            samples += 1
            if samples % 5 == 0:  # the spill folder is listed once a second: it can hold many files
                self.spill = max(self.spill, folder_bytes(self.spill_dir))


@dataclass
class Build:
    wall_seconds: float
    tree_peak_bytes: int
    largest_process_peak_bytes: int
    spill_peak_bytes: int
    not_passing: list[str]
    running_at_peak: list[str]
    slowest: list[tuple[str, float, int]]  # model, seconds, peak tree RSS while it ran


def execution_window(result: dict) -> tuple[float, float]:
    """When dbt executed this node, in epoch seconds ((0, 0) if it did not)."""
    execute = [t for t in result.get("timing", []) if t["name"] == "execute" and t.get("started_at")]
    if not execute:
        return 0.0, 0.0
    start, end = (dt.datetime.fromisoformat(execute[0][key].replace("Z", "+00:00")).timestamp()
                  for key in ("started_at", "completed_at"))
    return start, end + SAMPLE_SECONDS


def peak_while_running(result: dict, timeline: list[tuple[float, int]]) -> int:
    """The largest tree RSS sampled while dbt executed this node (shared with a node that ran
    alongside it on the other thread)."""
    start, end = execution_window(result)
    return max((rss for when, rss in timeline if start <= when <= end), default=0)


def dbt_build(workdir: Path, world: Path, as_of: str, memory_limit: str, select: list[str]) -> Build:
    database = workdir / "bench.duckdb"
    env = {**os.environ, "PUSHER_SOURCE_DATA": "parquet", "PUSHER_PARQUET_PATH": str(world),
           "PUSHER_AS_OF": as_of, "PUSHER_DUCKDB_PATH": str(database), "PUSHER_DBT_MEMORY_LIMIT": memory_limit,
           "DBT_LOG_PATH": str(workdir / "logs"), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    # with --select, models only (`dbt run`): a test of a selected model may read unbuilt ones
    command = [str(DBT), "run" if select else "build", "--profiles-dir", str(REPO), "--project-dir", str(REPO),
               "--target-path", str(workdir / "target")]
    if select:
        parents = subprocess.run([*command, "--select", *(f"+{node}" for node in select), "--exclude", *select],
                                 cwd=workdir, env=env, capture_output=True, text=True)
        if parents.returncode != 0:
            sys.stderr.write(parents.stdout[-3000:])
            raise SystemExit("building the selected models' parents failed")
        command += ["--select", *select]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    peaks = Peaks(process.pid, Path(f"{database}.tmp"))
    watcher = threading.Thread(target=peaks.watch, daemon=True)
    watcher.start()
    output = process.stdout.read()
    _, _, usage = os.wait4(process.pid, 0)  # this build's own rusage, not all children's so far
    process.returncode = 0  # reaped above; dbt's outcome is read from run_results.json
    wall = time.perf_counter() - started
    peaks.stop.set()
    watcher.join()
    results_file = workdir / "target" / "run_results.json"
    if not results_file.exists():
        sys.stderr.write(output[-3000:])
        raise SystemExit("dbt build did not run")
    results = json.loads(results_file.read_text())["results"]
    not_passing = [r["unique_id"] for r in results if r["status"] not in ("success", "pass", "no-op")]
    for result in results:  # why a node failed (e.g. DuckDB's out-of-memory error), not just which
        if result["status"] in ("error", "fail"):
            print(f"    {result['status']}: {result['unique_id']}: {(result.get('message') or '')[:500]}", flush=True)
    models = [(r["unique_id"].split(".")[-1], r["execution_time"], peak_while_running(r, peaks.timeline))
              for r in results if r["unique_id"].startswith("model.")]
    peak_time = max(peaks.timeline, key=lambda sample: sample[1], default=(0.0, 0))[0]
    running_at_peak = [r["unique_id"].split(".")[-1] for r in results
                       if execution_window(r)[0] <= peak_time <= execution_window(r)[1]]
    return Build(wall, peaks.tree_rss, usage.ru_maxrss * 1024, peaks.spill, not_passing, running_at_peak,  # ru_maxrss: KiB
                 sorted(models, key=lambda item: -item[1]))


def generate(world: Path, customers: int, seed: int, as_of: str) -> float:
    started = time.perf_counter()
    completed = subprocess.run([sys.executable, str(GENERATOR), "--customers", str(customers), "--seed", str(seed),
                                "--as-of", as_of, "--out", str(world)], capture_output=True, text=True)
    if completed.returncode != 0:
        sys.stderr.write(completed.stderr[-3000:])
        raise SystemExit("the generator failed")
    return time.perf_counter() - started


def mib(size: int) -> str:
    return f"{size / 2**20:,.0f} MiB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--memory-limit", nargs="+", default=["2GB"],
                        help="one build per value of PUSHER_DBT_MEMORY_LIMIT (default: the profile's 2GB)")
    parser.add_argument("--world", type=Path, help="an already generated world (one --customers value)")
    parser.add_argument("--select", nargs="*", default=[], help="run only these models, after their parents")
    parser.add_argument("--slowest", type=int, default=8, help="how many of the slowest models to print")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--as-of", default="2026-11-20 12:00:00")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    if args.world and len(args.customers) != 1:
        parser.error("--world is one world: give the one --customers value it was generated with")

    scratch = Path(tempfile.mkdtemp(prefix="bench-build-memory-"))
    try:
        for customers in args.customers:
            world = args.world
            if world is None:
                world = scratch / f"world-{customers}"
                seconds = generate(world, customers, args.seed, args.as_of)
                print(f"customers={customers:,} generated in {seconds:.0f} s", flush=True)
            for limit in args.memory_limit:
                workdir = scratch / f"build-{customers}-{limit}"
                workdir.mkdir()
                build = dbt_build(workdir, world, args.as_of, limit, args.select)
                print(f"customers={customers:,} memory_limit={limit} wall={build.wall_seconds:.0f} s "
                      f"peak_rss_tree={mib(build.tree_peak_bytes)} "
                      f"peak_rss_largest_process={mib(build.largest_process_peak_bytes)} "
                      f"peak_spill={mib(build.spill_peak_bytes)} not_passing={len(build.not_passing)}"
                      + (f" ({', '.join(build.not_passing[:5])})" if build.not_passing else ""))
                print(f"    at the peak dbt was running: {', '.join(build.running_at_peak) or '(nothing)'}")
                for name, seconds, rss in build.slowest[:args.slowest]:
                    print(f"    {seconds:7.1f} s  {mib(rss):>10} peak while running  {name}")
                sys.stdout.flush()
                if not args.keep:
                    shutil.rmtree(workdir, ignore_errors=True)
            if args.world is None and not args.keep:
                shutil.rmtree(world, ignore_errors=True)
    finally:
        if args.keep:
            print(f"kept: {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
