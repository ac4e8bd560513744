"""Print what each emulator holds next to what the warehouse says it should hold.

Usage: python scripts/compare_destinations.py CUSTOMERIO_URL MSADS_URL (run from the project dir,
with the same environment as `pusher`). Exits 1 if any destination differs from the warehouse.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pusher.config import load_project
from pusher.emulators.compare import compare_all, fetch_states
from pusher.warehouse import Warehouse, load_profile


def main(cio_url: str, msads_url: str) -> int:
    project_dir = Path.cwd()
    project = load_project(project_dir)
    wh = Warehouse.connect(load_profile(project_dir))
    try:
        results = compare_all(project, wh, fetch_states(cio_url, msads_url))
    finally:
        wh.close()
    print(f"\n{'sync':<44} {'destination':<14} {'warehouse':>9} {'holds':>7}  match")
    for result in results:
        mark = "yes" if result.equal else (
            f"NO (missing {len(result.missing)}, extra {len(result.extra)}, differing {len(result.differing)})")
        print(f"{result.sync:<44} {result.destination:<14} {result.expected:>9} {result.actual:>7}  {mark}")
    return 0 if all(result.equal for result in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
