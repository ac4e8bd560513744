"""`make demo`: the whole job end to end on the embedded DuckDB, against the local emulators.

Starts both emulators, builds the demo world with dbt, runs `pusher sync`, prints what each
destination holds next to each audience, then syncs again to show that nothing is re-sent.
Then the story (scripts/demo_story.py): a cart abandoner places an order; `dbt build` and
`pusher sync` move them from the cart lists to the recent-purchaser suppression at both
destinations, and the demo prints that move. Last, `pusher status` and `pusher report`.
Each run starts from a fresh warehouse file and fresh emulators, so it can be repeated.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

import demo_story
from pusher.emulators.server import free_port
from pusher.emulators.settings import emulator_env
from pusher.pii import mask_email

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DEMO_ANCHOR = "2026-11-20 12:00:00"  # the demo world's "now"; its seeds are written relative to it


def demo_env(cio_url: str, msads_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "PUSHER_AS_OF": DEMO_ANCHOR,
        "PUSHER_DUCKDB_PATH": os.environ.get("PUSHER_DUCKDB_PATH", "warehouse/retention.duckdb"),
        # The ledger's state file goes with the demo's fresh emulators: a ledger left by an earlier
        # demo would describe lists those emulators never had.
        "PUSHER_STATE_PATH": ".pusher/demo/state.duckdb",
        **emulator_env(cio_url, msads_url, token_file=".pusher/demo/msads-refresh-token"),
    }


def start_emulator(stack: ExitStack, name: str, env: dict[str, str]) -> str:
    port = free_port()
    proc = subprocess.Popen([str(BIN / "pusher"), "emulate", name, "--port", str(port)], cwd=ROOT, env=env)
    stack.callback(lambda: (proc.terminate(), proc.wait(timeout=10)))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/_emulator/stats", timeout=1).raise_for_status()
            return url
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"the {name} emulator did not start on port {port}")


def run(step: str, args: list[str], env: dict[str, str], ok_codes=(0,)) -> subprocess.CompletedProcess:
    shown = [Path(args[0]).name, *args[1:]]
    print(f"\n==> {step}: {' '.join(shown)}", flush=True)
    result = subprocess.run(args, cwd=ROOT, env=env)
    if result.returncode not in ok_codes:
        raise SystemExit(f"{step} failed with exit code {result.returncode}")
    return result


def requests_sent(url: str) -> int:
    stats = httpx.get(f"{url}/_emulator/stats", timeout=10).json()
    return int(stats.get("total_requests", 0))


def print_objects(cio_url: str) -> None:
    """Customer.io objects (kind: objects syncs) by type, and how many relate to a person."""
    objects = httpx.get(f"{cio_url}/_emulator/state", timeout=30).json().get("objects", {})
    by_type: dict[str, list[dict]] = {}
    for entity in objects.values():
        by_type.setdefault(entity["object_type_id"], []).append(entity)
    print("\nCustomer.io objects:")
    for type_id, entities in sorted(by_type.items()):
        related = sum(1 for entity in entities if entity["relationships"])
        example = entities[0]
        print(f"  type {type_id}: {len(entities)} objects, {related} related to a person; e.g. "
              f"{example['object_id']} -> {', '.join(example['relationships']) or 'nobody'} {example['attributes']}")


def main() -> None:
    (ROOT / "warehouse").mkdir(exist_ok=True)
    for leftover in (ROOT / "warehouse" / "retention.duckdb", ROOT / ".pusher" / "demo", ROOT / "target"):
        if leftover.is_dir():
            shutil.rmtree(leftover)
        elif leftover.exists():
            leftover.unlink()
    with ExitStack() as stack:
        base_env = dict(os.environ)
        cio_url = start_emulator(stack, "customerio", base_env)
        msads_url = start_emulator(stack, "microsoft-ads", base_env)
        env = demo_env(cio_url, msads_url)
        run("build the warehouse", [str(BIN / "dbt"), "build", "--profiles-dir", "."], env)
        # exit code 3 = some rows rejected: reported, not fatal for the demo
        run("sync every destination", [str(BIN / "pusher"), "sync"], env, ok_codes=(0, 3))
        run("compare", [sys.executable, "scripts/compare_destinations.py", cio_url, msads_url], env)
        print_objects(cio_url)
        before = requests_sent(cio_url) + requests_sent(msads_url)
        run("sync again (nothing changed)", [str(BIN / "pusher"), "sync"], env, ok_codes=(0, 3))
        after = requests_sent(cio_url) + requests_sent(msads_url)
        print(f"\nsecond sync sent {after - before} requests to the destinations")

        # The story: a cart abandoner buys; the rebuild and the next sync move them at both destinations.
        database = ROOT / env["PUSHER_DUCKDB_PATH"]
        customer_id, email, email_sha256 = demo_story.pick_cart_abandoner(database)
        print(f"\n==> the story: {customer_id} ({mask_email(email)}) abandoned a cart one to three days ago "
              "and now places an order (a new row in the raw store export)")
        was = demo_story.memberships(cio_url, msads_url, customer_id, email_sha256)
        demo_story.place_order(database, customer_id, email)
        run("rebuild the warehouse (seeds kept)", [str(BIN / "dbt"), "build", "--profiles-dir", ".", "--exclude",
                                                   "resource_type:seed"], env)
        run("sync the change", [str(BIN / "pusher"), "sync"], env, ok_codes=(0, 3))
        now = demo_story.memberships(cio_url, msads_url, customer_id, email_sha256)
        print("\n" + demo_story.describe_move(customer_id, email, was, now))
        if not demo_story.moved_as_expected(was, now):
            raise SystemExit("the buyer did not move from the cart lists to the suppression at both destinations")
        run("status", [str(BIN / "pusher"), "status"], env)
        run("report", [str(BIN / "pusher"), "report", "--out", "warehouse/pusher-report.html"], env)
        # The story's order lives only in the reloaded seed table: rebuild from the committed seeds,
        # so that a later plain `dbt build` finds the warehouse it expects (demo_story.RESTORE_BUILD).
        run("put the demo world back (the story's order was demo-only)",
            [str(BIN / "dbt"), *demo_story.RESTORE_BUILD, "--profiles-dir", "."], env)


if __name__ == "__main__":
    main()
