"""Benchmark: delivery to a Customer.io-like sink with a real round trip and rate limit.

For each audience size (default 100k and 1M members) and each mode (serial: one request in
flight, CUSTOMERIO_MAX_IN_FLIGHT=1; concurrent: the default), a fresh DuckDB project and a
fresh sink process, then three `pusher sync` processes in a row:
  first sync   empty ledger: every member is added (size / 1000 requests)
  1% churn     0.5% leave, 0.5% join
  no change    nothing to send
Each is timed wall-clock (the whole process: start-up, plan, delivery) with its peak RSS and
CPU time (user + sys, from wait4: steadier than wall time on a shared machine), and its
requests are counted by the sink. The floor of a sync is requests / rate
limit: no client can be faster without breaking the limit; the ratio first-sync / floor is
what the target reads (<= 1.2 at 100 ms and 100 requests/s).

The sink is the Customer.io emulator (`pusher emulate customerio --latency-ms L --rate-limit R`)
in its own process, so it does not share the pusher's interpreter. Its limit is Customer.io's
documented one (--rate, 100 requests/s: https://docs.customer.io/integrations/api/track/),
a strict sliding second, and the floor is counted at that rate. Requests arrive bunched on a
busy machine, and a strict window answers 429 to a second over its count (each 429 pauses every
worker for its Retry-After, 1 s). Each pusher version runs at its own default rate settings
(this one: the documented 100 per 1 s in a sliding window counted from the ends of requests;
CUSTOMERIO_RATE_LIMIT=--pusher-rate overrides it for both). Before the syncs, requests of 1000 ids
are sent straight to the sink through the pusher's Track API limiter, in its window and its even
pacing, to show how the sink itself answers them.

The process's fixed costs (interpreter start, imports, planning) are in every figure, with the
package's bytecode written first (as an installed package has it); the
no-change run is nearly all fixed cost, so "send" = first sync - no change estimates the
delivery alone, and its ratio to the floor is printed too.

--baseline DIR runs another version's pusher package (`git archive REF pusher | tar -x -C DIR`)
right before this one for each size and mode, against a fresh sink of the same settings: on a
shared machine, compare the two within one run, never with a figure from another run.

    .venv/bin/python benchmarks/bench_delivery.py [--sizes 100000,1000000] [--latency-ms 100]
        [--rate 100] [--pusher-rate R] [--modes serial,concurrent] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from pusher.destinations.customerio import DEFAULT_REQUESTS_PER_SECOND, track_limiter
from pusher.emulators.server import free_port
from pusher.emulators.settings import DEMO_CREDENTIALS

LIST = "CIO__Bench_Audience__None"
CHECKOUT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 1.2
TARGET_RSS_MB = 300.0
MODES = {"serial": "1", "concurrent": ""}      # CUSTOMERIO_MAX_IN_FLIGHT ("" = the destination's default)


def write_project(root: Path, members: int) -> None:
    """An audience model as dbt builds it (with member_fingerprint), and a manifest that syncs
    it to a Customer.io segment."""
    import duckdb

    root.mkdir(parents=True)
    (root / "dbt_project.yml").write_text("name: bench\nprofile: bench\nconfig-version: 2\n")
    (root / "profiles.yml").write_text("bench:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
                                       "      path: warehouse.duckdb\n")
    (root / "target").mkdir()
    (root / "target" / "manifest.json").write_text(json.dumps({
        "nodes": {"model.bench.aud_bench": {"name": "aud_bench", "alias": "aud_bench", "database": "warehouse",
                                            "schema": "main", "resource_type": "model"}},
        "exposures": {"exposure.bench.sync_bench": {
            "name": "sync_bench", "depends_on": {"nodes": ["model.bench.aud_bench"]},
            "meta": {"pusher": {"destination": "customerio", "kind": "audience", "list_name": LIST}}}},
        "parent_map": {"model.bench.aud_bench": []},
    }))
    with duckdb.connect(str(root / "warehouse.duckdb")) as conn:
        conn.execute("""create table aud_bench as
            select customer_id, email_sha256, cast(null as varchar) as phone_sha256, 'aud_bench' as audience_name,
                   'Bench' as list_name, cast(null as varchar) as exclusivity_group,
                   timestamp '2024-01-01' as entered_at,
                   cast(hash(customer_id, email_sha256, cast(null as varchar)) >> 1 as bigint) as member_fingerprint
            from (select 'c' || lpad(cast(i as varchar), 9, '0') as customer_id,
                         sha256('user' || cast(i as varchar) || '@example.com') as email_sha256
                  from range(?) t(i))""", [members])


def churn(root: Path, members: int) -> None:
    """0.5% leave (the first ones), 0.5% join (new ids)."""
    import duckdb

    moved = members // 200
    with duckdb.connect(str(root / "warehouse.duckdb")) as conn:
        conn.execute("delete from aud_bench where customer_id < ?", ["c" + str(moved).zfill(9)])
        conn.execute("""insert into aud_bench
            select customer_id, email_sha256, null, 'aud_bench', 'Bench', null, timestamp '2024-01-01',
                   cast(hash(customer_id, email_sha256, cast(null as varchar)) >> 1 as bigint)
            from (select 'n' || lpad(cast(i as varchar), 9, '0') as customer_id,
                         sha256('new' || cast(i as varchar) || '@example.com') as email_sha256
                  from range(?) t(i))""", [moved])


class Sink:
    """The Customer.io emulator in its own process."""

    def __init__(self, latency_ms: int, rate: float):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pusher", "emulate", "customerio", "--port", str(self.port),
             "--latency-ms", str(latency_ms), "--rate-limit", str(rate)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(self.url + "/_emulator/stats", timeout=1)
                return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise SystemExit("the sink did not start")
                time.sleep(0.1)

    def counts(self) -> dict[str, int]:
        """Track API requests by status (segment membership calls)."""
        stats = httpx.get(self.url + "/_emulator/stats", timeout=10).json()["requests"]
        totals: dict[str, int] = {}
        for endpoint, by_status in stats.items():
            if "/api/v1/segments/" in endpoint:
                for status, count in by_status.items():
                    totals[status] = totals.get(status, 0) + count
        return totals

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=20)


def sink_check(sink: Sink, rate: float, pacing: str, seconds: float = 3.0) -> dict:
    """Requests of 1000 ids sent straight to the sink at `rate`, 32 in flight, through the
    pusher's Track API limiter: does the sink keep up, and how many does its strict window refuse?"""
    body = {"ids": [f"c{i:09d}" for i in range(1000)]}
    segment = httpx.post(sink.url + "/v1/segments", json={"segment": {"name": "sink-check"}},
                         headers={"Authorization": f"Bearer {DEMO_CREDENTIALS['CUSTOMERIO_APP_API_KEY']}"}).json()
    path = f"/api/v1/segments/{segment['segment']['id']}/add_customers?id_type=id"
    auth = (DEMO_CREDENTIALS["CUSTOMERIO_SITE_ID"], DEMO_CREDENTIALS["CUSTOMERIO_API_KEY"])
    total = int(rate * seconds)
    client = httpx.Client(base_url=sink.url, auth=auth, limits=httpx.Limits(max_connections=64))
    limiter = track_limiter(rate, pacing=pacing)
    started = time.perf_counter()

    def one(i: int) -> int:
        with limiter.slot():
            return client.post(path, json=body).status_code

    with ThreadPoolExecutor(32) as pool:
        statuses = list(pool.map(one, range(total)))
    elapsed = time.perf_counter() - started
    client.close()
    return {"requests": total, "seconds": round(elapsed, 2), "floor": round(total / rate, 2),
            "ok": statuses.count(200)}


def with_version(env: dict[str, str], code: Path | None) -> dict[str, str]:
    """The environment of a process that imports `code`'s pusher package (a baseline), or this
    checkout's. Run it in the project directory: `python -m` puts its working directory first
    on sys.path, so, run from a checkout, it would import that checkout's pusher, whatever
    PYTHONPATH says."""
    return {**env, "PYTHONPATH": str(code or CHECKOUT)}


def compile_bytecode(code: Path) -> None:
    """Write the bytecode of `code`'s pusher package, as pip does when it installs a package: with
    PYTHONDONTWRITEBYTECODE set (or a read-only checkout) every sync would otherwise compile the
    package's modules again, about 0.1 s of each run."""
    if not compileall.compile_dir(str(code / "pusher"), quiet=1):
        raise SystemExit(f"cannot compile {code / 'pusher'}")


def run_sync(root: Path, sink: Sink, rate: float | None, in_flight: str, code: Path | None = None) -> dict:
    env = {**os.environ, **DEMO_CREDENTIALS, "CUSTOMERIO_TRACK_URL": sink.url, "CUSTOMERIO_APP_URL": sink.url,
           "DBT_PROFILES_DIR": str(root)}
    if rate is not None:
        env["CUSTOMERIO_RATE_LIMIT"] = str(rate)
    else:
        env.pop("CUSTOMERIO_RATE_LIMIT", None)      # each version's own default
    env = with_version(env, code)
    env.pop("DBT_TARGET", None)
    if in_flight:
        env["CUSTOMERIO_MAX_IN_FLIGHT"] = in_flight
    else:
        env.pop("CUSTOMERIO_MAX_IN_FLIGHT", None)
    before = sink.counts()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "pusher", "sync", "--json", "--project-dir", str(root)],
                                   env=env, stdout=out, stderr=err, cwd=root)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            raise SystemExit(f"pusher sync exited {process.returncode}: {err.read().decode()[-2000:]}")
        report = json.loads(out.read())
    after = sink.counts()
    sync = report["syncs"][0]
    return {"seconds": elapsed, "rss_mb": usage.ru_maxrss / 1024, "requests": sync["requests"],
            "cpu": usage.ru_utime + usage.ru_stime,
            "sink_requests": sum(after.values()) - sum(before.values()),
            "throttled": after.get("429", 0) - before.get("429", 0),
            "adds": sync["sent"]["adds"], "removes": sync["sent"]["removes"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--rate", type=float, default=100.0, help="the sink's limit, and the floor's rate")
    parser.add_argument("--pusher-rate", type=float, default=None,
                        help="CUSTOMERIO_RATE_LIMIT for every version (default: each version's own default)")
    parser.add_argument("--modes", default="serial,concurrent")
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--baseline", type=Path, default=None,
                        help="a directory holding another version's pusher package (git archive REF pusher | "
                             "tar -x -C DIR): each size and mode runs it too, right before this one")
    options = parser.parse_args()
    sizes = [int(size) for size in options.sizes.split(",")]
    modes = options.modes.split(",")
    base = options.dir or Path(tempfile.mkdtemp(prefix="pusher-bench-delivery-"))
    sink_rate = options.rate
    pusher_rate = options.pusher_rate

    checks = []
    for pacing in ("window", "even"):
        check_sink = Sink(options.latency_ms, sink_rate)
        try:
            checks.append((pacing, sink_check(check_sink, pusher_rate or DEFAULT_REQUESTS_PER_SECOND, pacing)))
        finally:
            check_sink.stop()

    results: dict[tuple[int, str], dict[str, dict]] = {}
    versions = [("baseline", options.baseline.resolve())] if options.baseline else []
    for _, code in [*versions, ("", CHECKOUT)]:
        compile_bytecode(code)
    for size in sizes:
        for mode in modes:
            for version, code in [*versions, ("", None)]:
                label = f"{mode}{'@' + version if version else ''}"
                root = base / f"{label}-{size}"
                shutil.rmtree(root, ignore_errors=True)
                write_project(root, size)
                sink = Sink(options.latency_ms, sink_rate)
                try:
                    runs = {"first sync": run_sync(root, sink, pusher_rate, MODES[mode], code)}
                    churn(root, size)
                    runs["1% churn"] = run_sync(root, sink, pusher_rate, MODES[mode], code)
                    runs["no change"] = run_sync(root, sink, pusher_rate, MODES[mode], code)
                finally:
                    sink.stop()
                    shutil.rmtree(root, ignore_errors=True)
                results[(size, label)] = runs
                print(f"done {label} {size:,}", file=sys.stderr)

    print(f"machine: {os.cpu_count()} cpus, load {os.getloadavg()[0]:.2f}; sink: Customer.io emulator, "
          f"{options.latency_ms} ms added per request, limit {sink_rate:g} requests/s (the floor's rate); "
          f"pusher rate {f'{pusher_rate:g} requests/s' if pusher_rate else 'each version its default'}")
    for pacing, check in checks:
        print(f"sink alone, requests sent through the pusher's limiter ({pacing}): {check['requests']} requests of "
              f"1000 ids in {check['seconds']} s, {check['ok']} answered 200, {check['requests'] - check['ok']} 429")
    print(f"{'members':>9} {'mode':<19} {'run':<10} {'seconds':>8} {'requests':>8} {'429s':>5} {'floor s':>8} "
          f"{'ratio':>6} {'peak RSS':>9} {'CPU s':>6}")
    for (size, mode), runs in results.items():
        for name, run in runs.items():
            floor = run["requests"] / options.rate
            ratio = f"{run['seconds'] / floor:.2f}" if floor and name == "first sync" else "-"
            print(f"{size:>9,} {mode:<19} {name:<10} {run['seconds']:>8.2f} {run['requests']:>8} "
                  f"{run['throttled']:>5} {floor:>8.2f} {ratio:>6} {run['rss_mb']:>6.0f} MB {run['cpu']:>6.2f}")
    for size in sizes:
        if (size, "serial") in results and (size, "concurrent") in results:
            serial = results[(size, "serial")]["first sync"]["seconds"]
            concurrent = results[(size, "concurrent")]["first sync"]["seconds"]
            print(f"{size:,} first sync: serial / concurrent = {serial / concurrent:.1f}x")
    for (size, label), runs in results.items():
        if "@" in label:
            current = results[(size, label.split("@")[0])]
            print(f"{size:,} {label.split('@')[0]}: this code vs {label}: " + ", ".join(
                f"{name} {current[name]['seconds']:.2f}s vs {run['seconds']:.2f}s" for name, run in runs.items()))
    for (size, mode), runs in results.items():
        first = runs["first sync"]
        floor = first["requests"] / options.rate
        send = first["seconds"] - runs["no change"]["seconds"]
        print(f"{size:,} {mode}: send (first sync - no change) {send:.2f}s = {send / floor:.2f}x the floor")
        if mode == "concurrent":
            ratio = first["seconds"] / floor
            print(f"target {size:,} {mode}: first sync {ratio:.2f}x the floor (target <= {TARGET_RATIO}) "
                  f"{'ok' if ratio <= TARGET_RATIO else 'OVER TARGET'}; peak RSS {first['rss_mb']:.0f} MB "
                  f"(target < {TARGET_RSS_MB:.0f}) {'ok' if first['rss_mb'] < TARGET_RSS_MB else 'OVER TARGET'}")


if __name__ == "__main__":
    main()
