"""The whole loop: the demo warehouse built by dbt, `pusher` as a real process, both emulators
over real HTTP on loopback. Each test works on its own copy of the session's demo warehouse."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import httpx
import pytest

from pusher.config import load_project
from pusher.emulators import customerio, microsoft_ads
from pusher.emulators.compare import compare_all, fetch_states, total_requests
from pusher.emulators.options import EmulatorOptions
from pusher.emulators.server import running
from pusher.emulators.settings import emulator_env
from pusher.warehouse import Warehouse, load_profile
from tests.conftest import DEMO_AS_OF, REPO, run_dbt

PUSHER = Path(sys.executable).parent / "pusher"

# Distinctive credentials, so a leak anywhere is found by a plain substring scan.
SECRETS = {
    "CUSTOMERIO_API_KEY": "cio-track-key-7f3a9c21e5",
    "CUSTOMERIO_APP_API_KEY": "cio-app-key-b81d4e0c77",
    "MSADS_DEVELOPER_TOKEN": "msads-devtoken-55ab91c3",
    "MSADS_REFRESH_TOKEN": "msads-refresh-0c4f2d8e19",
    "MSADS_CLIENT_SECRET": "msads-client-secret-9e7a",
}


@dataclass
class Stack:
    root: Path
    env: dict[str, str]
    cio_url: str
    msads_url: str
    pristine: Path                 # the demo warehouse as dbt built it, without any pusher state
    outputs: list[str] = field(default_factory=list)

    @property
    def state_file(self) -> Path:
        return Path(self.env["PUSHER_STATE_PATH"])

    def lose_ledger(self) -> None:
        """A fresh machine: no state file."""
        for path in (self.state_file, self.state_file.with_name(self.state_file.name + ".wal")):
            path.unlink(missing_ok=True)

    def rebuild_warehouse(self) -> None:
        """The warehouse file deleted and built again from scratch: the session's dbt build
        of the same demo data is that file (the same bytes a `dbt build` would write)."""
        database = Path(self.env["PUSHER_DUCKDB_PATH"])
        database.unlink()
        shutil.copy(self.pristine, database)

    def pusher(self, *arguments: str, ok=(0,)) -> dict:
        completed = subprocess.run([str(PUSHER), *arguments, "--json"], cwd=REPO, env=self.env,
                                   capture_output=True, text=True, timeout=300)
        self.outputs += [completed.stdout, completed.stderr]
        assert completed.returncode in ok, completed.stdout[-3000:] + completed.stderr[-3000:]
        return json.loads(completed.stdout)

    def requests(self) -> int:
        return total_requests(self.cio_url) + total_requests(self.msads_url)

    def comparisons(self):
        project = load_project(REPO, Path(self.env["DBT_TARGET_PATH"]))
        wh = Warehouse.connect(load_profile(REPO, env=self.env), env=self.env, project=project)
        try:
            return compare_all(project, wh, fetch_states(self.cio_url, self.msads_url))
        finally:
            wh.close()

    def assert_destinations_equal_warehouse(self) -> None:
        differing = [(c.sync, c.missing[:3], c.extra[:3], c.differing[:3]) for c in self.comparisons() if not c.equal]
        assert not differing, differing


def start_stack(stack: ExitStack, tmp_path: Path, monkeypatch, warehouse_env: dict[str, str], pristine: Path,
                options: EmulatorOptions = EmulatorOptions()) -> Stack:
    """Both emulators (with the given fault options) running until `stack` closes, and the
    pusher's environment: the warehouse's variables (warehouse_env), a state file of its own."""
    monkeypatch.setenv("MSADS_EMULATOR_REFRESH_TOKEN", SECRETS["MSADS_REFRESH_TOKEN"])
    monkeypatch.setenv("MSADS_EMULATOR_DEVELOPER_TOKEN", SECRETS["MSADS_DEVELOPER_TOKEN"])
    monkeypatch.setenv("MSADS_EMULATOR_TERMS_ACCEPTED", "true")
    cio_app = customerio.create_app(options, env={
        "CUSTOMERIO_EMULATOR_SITE_ID": "site-e2e",
        "CUSTOMERIO_EMULATOR_API_KEY": SECRETS["CUSTOMERIO_API_KEY"],
        "CUSTOMERIO_EMULATOR_APP_API_KEY": SECRETS["CUSTOMERIO_APP_API_KEY"]})
    cio_url = stack.enter_context(running(cio_app))
    msads_url = stack.enter_context(running(microsoft_ads.create_app(options)))
    env = {
        **os.environ,
        "PUSHER_AS_OF": DEMO_AS_OF,
        "PUSHER_STATE_PATH": str(tmp_path / "state" / "state.duckdb"),
        **warehouse_env,
        **emulator_env(cio_url, msads_url, str(tmp_path / "msads-token"),
                       credentials={"CUSTOMERIO_SITE_ID": "site-e2e", **SECRETS}),
        "CUSTOMERIO_RETRY_BASE_DELAY": "0.01",
        "CUSTOMERIO_MAX_ATTEMPTS": "8",
        "MSADS_POLL_SECONDS": "0.02",
        "MSADS_THROTTLE_MAX_WAIT_SECONDS": "0.05",
        "MSADS_RATE_WAIT_SECONDS": "0.05",
    }
    return Stack(tmp_path, env, cio_url, msads_url, pristine)


@pytest.fixture
def stack_factory(tmp_path, demo_warehouse, monkeypatch):
    """Start both emulators (with the given fault options) and point the pusher at a warehouse copy."""
    assert not demo_warehouse.build.not_passing(), demo_warehouse.build.not_passing()
    with ExitStack() as stack:
        def make(options: EmulatorOptions = EmulatorOptions()) -> Stack:
            database = tmp_path / demo_warehouse.database.name  # the file name is the catalog name in the manifest
            shutil.copy(demo_warehouse.database, database)
            target = tmp_path / "target"
            shutil.copytree(demo_warehouse.workdir / "target", target)
            return start_stack(stack, tmp_path, monkeypatch, {"PUSHER_DUCKDB_PATH": str(database),
                                                              "DBT_TARGET_PATH": str(target)},
                               demo_warehouse.database, options)

        yield make


def test_after_a_sync_every_destination_equals_the_warehouse_and_a_rerun_sends_nothing(stack_factory):
    stack = stack_factory()
    report = stack.pusher("sync")
    assert report["exit_code"] == 0
    sent = {item["sync"]: item["sent"] for item in report["syncs"]}
    assert sent["cio_people"]["updates"] > 300 and sent["cio_events"]["events"] > 100
    stack.assert_destinations_equal_warehouse()
    # Members Customer.io cannot know (no email, no event: never identified) wait, and say so.
    people = set(fetch_states(stack.cio_url, None)["customerio"]["people"])
    with duckdb.connect(stack.env["PUSHER_DUCKDB_PATH"], read_only=True) as conn:
        unknown = {row[0] for row in conn.execute("select customer_id from aud_vip_high_ltv").fetchall()} - people
    status = {row["sync"]: row for row in stack.pusher("status", ok=(0, 3))["syncs"]}
    assert status["cio_segment_vip_high_ltv"]["waiting_for_people"] == len(unknown)

    before = stack.requests()
    again = stack.pusher("sync")
    assert stack.requests() == before, "a no-change rerun must not send a single request"
    assert all(item["requests"] == 0 for item in again["syncs"])


def _synced_with_a_cart_abandoner(stack_factory):
    """A stack after a first full sync, its warehouse, and one cart abandoner's id and email hash."""
    stack = stack_factory()
    stack.pusher("sync")
    database = Path(stack.env["PUSHER_DUCKDB_PATH"])
    with duckdb.connect(str(database), read_only=True) as conn:
        customer_id, email_hash = conn.execute(
            "select customer_id, email_sha256 from aud_cart_abandon_1_3d "
            "where email_sha256 is not null order by customer_id limit 1").fetchone()
    return stack, database, customer_id, email_hash


def test_a_source_change_sends_only_the_difference(stack_factory):
    stack, database, customer_id, email_hash = _synced_with_a_cart_abandoner(stack_factory)

    # The cart abandoner buys (a new raw export row, one hour before as-of), and dbt rebuilds.
    with duckdb.connect(str(database)) as conn:
        conn.execute("""insert into raw_store__orders
            select 'O-E2E-1', ?, null, timestamp '2026-11-20 11:00:00', 'paid', 80.00, 'USD',
                   timestamp '2026-11-20 11:30:00'""", [customer_id])
    rebuild = run_dbt(stack.root, "build", "--exclude", "resource_type:seed", database=database, target="target")
    assert not rebuild.not_passing(), rebuild.output()

    plan = {item["sync"]: item["plan"] for item in stack.pusher("plan")["syncs"]}
    assert plan["cio_segment_cart_abandon_1_3d"]["removes"] == 1
    assert plan["msads_list_cart_abandon_1_3d"]["removes"] == 1
    assert plan["cio_segment_suppress_recent_purchasers_0_7d"]["adds"] == 1
    assert plan["cio_people"]["updates"] == 1, "only the buyer's attributes changed"
    changed = sum(p["adds"] + p["removes"] + p["updates"] for p in plan.values())
    assert changed <= 8, plan

    before = stack.requests()
    report = stack.pusher("sync")
    stack.assert_destinations_equal_warehouse()
    requests = sum(item["requests"] for item in report["syncs"])
    assert 0 < requests <= 20 and stack.requests() - before >= requests
    update = next(item for item in report["syncs"] if item["sync"] == "cio_people")
    assert update["sent"]["updates"] == 1

    state = fetch_states(stack.cio_url, stack.msads_url)
    cart_list = next(item for item in state["microsoft_ads"]["lists"] if item["name"].startswith("MSADS__Cart_Abandon_1-3d"))
    assert email_hash not in cart_list["members"]
    assert state["customerio"]["people"][customer_id]["attributes"]["order_count"] >= 1


def test_sync_converges_under_injected_429_and_5xx(stack_factory):
    stack = stack_factory(EmulatorOptions(fail_rate=0.2, rate_limit=200, seed=7))
    codes = []
    for _ in range(4):  # a run that gives up on a destination exits 6; the next one resumes
        report = stack.pusher("sync", ok=(0, 3, 6))
        codes.append(report["exit_code"])
        if report["exit_code"] == 0:
            break
    assert codes[-1] == 0, codes
    stack.assert_destinations_equal_warehouse()
    injected = 0
    for url in (stack.cio_url, stack.msads_url):
        for statuses in httpx.get(f"{url}/_emulator/stats").json()["requests"].values():
            injected += sum(count for status, count in statuses.items() if not str(status).startswith("2"))
    assert injected >= 10, "the emulators must really have failed some requests for this test to mean anything"


def test_secrets_never_reach_output_errors_or_state(stack_factory):
    stack = stack_factory()
    stack.pusher("sync")
    stack.pusher("plan")
    stack.pusher("status")
    stack.pusher("history")
    # Wrong credentials: the errors must name what to fix without echoing any secret.
    wrong = dict(stack.env, CUSTOMERIO_API_KEY="cio-wrong-key-3e8d11", MSADS_REFRESH_TOKEN="msads-wrong-refresh-77")
    Path(stack.env["MSADS_TOKEN_FILE"]).unlink(missing_ok=True)
    with duckdb.connect(stack.env["PUSHER_DUCKDB_PATH"]) as conn:
        conn.execute("update cio_people set first_name = 'Changed' where customer_id = (select min(customer_id) from cio_people)")
    failing = subprocess.run([str(PUSHER), "sync", "--json", "--force"], cwd=REPO, env=wrong,
                             capture_output=True, text=True, timeout=300)
    assert failing.returncode == 5, failing.stdout[-2000:] + failing.stderr[-2000:]
    stack.outputs += [failing.stdout, failing.stderr]

    with duckdb.connect(str(stack.state_file), read_only=True) as conn:
        tables = [row[0] for row in conn.execute(
            "select table_name from information_schema.tables where table_schema = 'pusher_ledger'").fetchall()]
        assert tables
        ledger_dump = "\n".join(str(conn.execute(f'select * from pusher_ledger."{name}"').fetchall()) for name in tables)
    scanned = "\n".join(stack.outputs) + ledger_dump
    for secret in [*SECRETS.values(), "cio-wrong-key-3e8d11", "msads-wrong-refresh-77"]:
        assert secret not in scanned, f"a credential leaked into output, errors or the ledger: {secret[:6]}…"


def test_a_lost_ledger_reconciles_without_duplicates_or_stale_members(stack_factory):
    stack, database, customer_id, email_hash = _synced_with_a_cart_abandoner(stack_factory)
    stack.lose_ledger()
    with duckdb.connect(str(database)) as conn:
        # While the ledger is gone the audience changes: the member must leave both destinations.
        conn.execute("delete from aud_cart_abandon_1_3d where customer_id = ?", [customer_id])

    # Microsoft cannot say how many members its lists hold: a Replace of a list the ledger
    # does not know stops until someone has checked the model.
    stopped = stack.pusher("sync", ok=(4,))
    by_sync = {item["sync"]: item for item in stopped["syncs"]}
    assert by_sync["msads_list_cart_abandon_1_3d"]["stopped_by"] == ["remove_share"]
    assert "--override remove_share" in by_sync["msads_list_cart_abandon_1_3d"]["message"]
    assert all(item["exit_code"] == 0 for name, item in by_sync.items() if not name.startswith("msads_"))

    stack.pusher("sync", "--override", "remove_share")
    stack.assert_destinations_equal_warehouse()
    state = fetch_states(stack.cio_url, stack.msads_url)
    segment_names = [segment["name"] for segment in state["customerio"]["segments"].values()]
    list_names = [item["name"] for item in state["microsoft_ads"]["lists"]]
    assert len(segment_names) == len(set(segment_names)), "a lost ledger must not create duplicate segments"
    assert len(list_names) == len(set(list_names)), "a lost ledger must not create duplicate lists"
    segment = next(s for s in state["customerio"]["segments"].values() if s["name"].startswith("CIO__Cart_Abandon_1-3d"))
    assert customer_id not in segment["members"]
    cart_list = next(item for item in state["microsoft_ads"]["lists"] if item["name"].startswith("MSADS__Cart_Abandon_1-3d"))
    assert email_hash not in cart_list["members"]


def test_the_ledger_survives_a_rebuild_of_the_warehouse(stack_factory):
    stack = stack_factory()
    stack.pusher("sync")
    stack.rebuild_warehouse()
    before = stack.requests()
    again = stack.pusher("sync")
    assert again["exit_code"] == 0 and all(item["requests"] == 0 for item in again["syncs"])
    assert stack.requests() == before, "a rebuilt warehouse with the same data must send nothing"


def _vip_list(stack) -> set[str]:
    lists = fetch_states(stack.cio_url, stack.msads_url)["microsoft_ads"]["lists"]
    return set(next(item for item in lists if item["name"] == "MSADS__VIP_High_LTV_Current")["members"])


def test_a_lost_ledger_and_a_broken_model_never_replace_a_list(stack_factory):
    """Issue 9.1: sync; a fresh machine (no warehouse, no state, no target); the model cut to
    one row; rebuild; sync the Microsoft list: the guard stops it and the list keeps its members."""
    stack = stack_factory()
    stack.pusher("sync")
    members = _vip_list(stack)
    assert len(members) > 10
    stack.lose_ledger()
    target = Path(stack.env["DBT_TARGET_PATH"])
    shutil.rmtree(target)
    stack.rebuild_warehouse()
    shutil.copytree(stack.pristine.parent / "target", target)
    with duckdb.connect(stack.env["PUSHER_DUCKDB_PATH"]) as conn:
        conn.execute("delete from aud_vip_high_ltv where customer_id <> (select min(customer_id) from aud_vip_high_ltv)")

    report = stack.pusher("sync", "--select", "msads_list_vip_high_ltv", ok=(4,))
    outcome = report["syncs"][0]
    assert outcome["stopped_by"] == ["remove_share"] and outcome["sent"]["adds"] == 0, outcome
    assert "MSADS__VIP_High_LTV_Current" in outcome["message"]
    assert _vip_list(stack) == members, "the list must keep every member"


def test_microsoft_lists_hold_everyone_400_days_later_with_default_settings(stack_factory):
    stack = stack_factory()
    assert stack.pusher("sync")["exit_code"] == 0
    lists = [item for item in fetch_states(stack.cio_url, stack.msads_url)["microsoft_ads"]["lists"]]
    assert lists and all(item["membership_duration"] == -1 for item in lists)
    httpx.post(stack.msads_url + "/_emulator/clock", json={"days": 400}).raise_for_status()

    microsoft = [c for c in stack.comparisons() if c.sync.startswith("msads_")]
    assert microsoft and all(c.equal for c in microsoft), [(c.sync, c.missing[:3]) for c in microsoft if not c.equal]
    status = {row["sync"]: row for row in stack.pusher("status")["syncs"]}
    for sync in (c.sync for c in microsoft):
        row = status[sync]
        assert row["refresh_after_days"] is None
        assert row["reported_search_size"] == row["destination_size"] > 0
    plan = {item["sync"]: item["plan"] for item in stack.pusher("plan")["syncs"]}
    assert all(plan[c.sync]["adds"] == plan[c.sync]["refreshes"] == 0 for c in microsoft)


def _failed_tests_stop(report) -> list[str]:
    return [item["sync"] for item in report["syncs"] if "failed_tests" in item["stopped_by"]]


def test_a_failed_test_hidden_by_docs_generate_still_stops_the_sync(stack_factory):
    """Issue 9.5: a failing dbt test, then `dbt docs generate` (which rewrites run_results.json
    without any test result): the failed-tests guard reads the results dbt recorded in the
    warehouse, so the sync still stops."""
    stack = stack_factory()
    database = Path(stack.env["PUSHER_DUCKDB_PATH"])
    with duckdb.connect(str(database)) as conn:   # a new export with a status the accepted_values test refuses
        conn.execute("insert into raw_store__orders select order_id, customer_id, email, ordered_at, 'bogus', "
                     "total_price, currency, '2026-11-20 11:30:00' from raw_store__orders "
                     "where order_id = (select min(order_id) from stg_store__orders) limit 1")
    failing = run_dbt(stack.root, "build", "--select", "stg_store__orders", database=database, target="target")
    assert any("stg_store__orders" in line for line in failing.not_passing()), failing.output()
    docs = run_dbt(stack.root, "docs", "generate", database=database, target="target")
    assert docs.completed.returncode == 0, docs.output()
    assert not docs.not_passing(), "run_results.json no longer shows the failure"

    report = stack.pusher("sync", ok=(4,))
    stopped = _failed_tests_stop(report)
    assert "msads_list_vip_high_ltv" in stopped and "cio_segment_vip_high_ltv" in stopped
    message = next(item["message"] for item in report["syncs"] if item["sync"] == "msads_list_vip_high_ltv")
    assert "accepted_values_stg_store__orders_financial_status" in message and "fail" in message
    assert all(item["requests"] == 0 for item in report["syncs"] if item["sync"] in stopped)


def test_a_model_rebuilt_without_its_tests_stops_until_they_run(stack_factory):
    stack = stack_factory()
    database = Path(stack.env["PUSHER_DUCKDB_PATH"])
    rerun = run_dbt(stack.root, "run", "--select", "aud_vip_high_ltv", database=database, target="target")
    assert not rerun.not_passing(), rerun.output()
    report = stack.pusher("sync", "--select", "msads_list_vip_high_ltv", ok=(4,))
    assert report["syncs"][0]["stopped_by"] == ["failed_tests"]
    assert "before aud_vip_high_ltv was rebuilt" in report["syncs"][0]["message"]
    tested = run_dbt(stack.root, "test", "--select", "aud_vip_high_ltv", database=database, target="target")
    assert not tested.not_passing(), tested.output()
    assert stack.pusher("sync", "--select", "msads_list_vip_high_ltv")["exit_code"] == 0
