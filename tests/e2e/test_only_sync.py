"""A controlled test sync against both emulators: `pusher sync --only` sends two customers,
reads back where they are from Customer.io's App API, and a full sync completes the rest."""

from __future__ import annotations

from pathlib import Path

import duckdb
import httpx

from pusher.config import load_project
from tests.conftest import REPO
from tests.e2e.test_end_to_end import stack_factory  # noqa: F401  (the shared fixture)


def test_only_two_customers_then_everyone(stack_factory):  # noqa: F811
    stack = stack_factory()
    project = load_project(REPO, Path(stack.env["DBT_TARGET_PATH"]))
    with duckdb.connect(stack.env["PUSHER_DUCKDB_PATH"], read_only=True) as conn:
        chosen = [row[0] for row in conn.execute(
            "select customer_id from aud_cart_abandon_0_1d where email_sha256 is not null "
            "order by customer_id limit 2").fetchall()]
        expected = {key: {"customerio": set(), "microsoft_ads": set()} for key in chosen}
        for sync in project.syncs:
            if sync.kind != "audience":
                continue
            required = "email_sha256 is not null" if sync.destination == "microsoft_ads" else "true"
            for (key,) in conn.execute(f"select customer_id from {'.'.join(sync.relation[1:])} "
                                       f"where customer_id in (?, ?) and {required}", chosen).fetchall():
                expected[key][sync.destination].add(sync.list_name)
    assert len(chosen) == 2 and all(expected[key]["customerio"] for key in chosen)

    report = stack.pusher("sync", "--only", ",".join(chosen))
    assert report["exit_code"] == 0
    state = httpx.get(f"{stack.cio_url}/_emulator/state").json()
    assert set(state["people"]) == set(chosen)                      # nobody else was sent
    for key in chosen:
        seen = report["only"][key]
        assert set(seen["customerio"]["lists"]) == expected[key]["customerio"]
        assert seen["customerio"]["read_from"] == "Customer.io App API"
        attributes = seen["customerio"]["attributes"]
        assert "***@" in attributes["email"] and attributes["last_synced_at"]
        assert set(seen["microsoft_ads"]["lists"]) == expected[key]["microsoft_ads"]
        assert "ledger" in seen["microsoft_ads"]["read_from"]

    full = stack.pusher("sync")
    assert full["exit_code"] == 0
    held = {c.sync: c for c in stack.comparisons()}
    assert held["cio_people"].equal and held["cio_events"].equal
    assert all(c.equal for c in held.values() if c.destination == "microsoft_ads")
    people = {item["sync"]: item["sent"] for item in full["syncs"]}["cio_people"]["updates"]
    with duckdb.connect(stack.env["PUSHER_DUCKDB_PATH"], read_only=True) as conn:
        assert people == conn.execute("select count(*) from cio_people").fetchone()[0] - 2   # the rest only
    assert "@" not in "".join(stack.outputs).replace("***@", "")
