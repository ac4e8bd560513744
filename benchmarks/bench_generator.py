"""Benchmark the source-data generator: wall time and peak memory at a given scale.

    .venv/bin/python benchmarks/bench_generator.py --customers 1000000

Runs scripts/generate_sources.py in a subprocess (so its peak RSS is measured alone, via
RUSAGE_CHILDREN) into a temporary folder that is removed afterwards unless --keep is given.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GENERATOR = REPO / "scripts" / "generate_sources.py"


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*.parquet"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--as-of", default="2026-11-20 12:00:00")
    parser.add_argument("--memory-limit", default="4GB")
    parser.add_argument("--out", default=None, help="output folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args()

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench-generator-"))
    command = [
        sys.executable, str(GENERATOR), "--customers", str(args.customers), "--seed",
        str(args.seed), "--as-of", args.as_of, "--out", str(out),
        "--memory-limit", args.memory_limit,
    ]
    started = time.perf_counter()
    try:
        completed = subprocess.run(command, stderr=subprocess.PIPE, text=True)
        wall = time.perf_counter() - started
        sys.stderr.write(completed.stderr)
        if completed.returncode != 0:
            print(f"generator failed with exit code {completed.returncode}", file=sys.stderr)
            return completed.returncode
        size = folder_size(out)
    finally:
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    print(
        f"customers={args.customers:,} wall_seconds={wall:.1f} "
        f"peak_rss_mib={peak_kib / 1024:.0f} parquet_mib={size / 2**20:.0f} "
        f"customers_per_second={args.customers / wall:,.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
