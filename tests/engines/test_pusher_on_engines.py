"""The pusher's whole loop on the demo built by PostgreSQL and by Spark: `pusher` as a process,
both emulators over real HTTP (tests/e2e's stack), the ledger in the state file as on DuckDB.
plan, sync, a no-change rerun that sends no request, churn (members leave and join: exactly
those are sent), and a row the destination rejects, retried until it is fixed."""

from __future__ import annotations

import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Callable

import pytest

from pusher.emulators.compare import fetch_states
from tests.e2e.test_end_to_end import Stack, start_stack

from . import postgres_server

pytestmark = [pytest.mark.engines, pytest.mark.timeout(1200)]

VIP = "aud_vip_high_ltv"


def by_sync(report: dict) -> dict[str, dict]:
    return {item["sync"]: item for item in report["syncs"]}


@pytest.fixture
def postgres_stack(tmp_path, monkeypatch, postgres, postgres_demo):
    """A private copy of the PostgreSQL demo database (and its manifest), with both emulators."""
    database = f"loop_{uuid.uuid4().hex[:8]}"
    postgres_server.create_database(postgres, database, template=postgres_demo.env["PUSHER_PG_DATABASE"])
    target = tmp_path / "target"
    target.symlink_to(postgres_demo.workdir / "target")
    with ExitStack() as stack:
        made = start_stack(stack, tmp_path, monkeypatch, {**postgres.env(database), "DBT_TARGET": "postgres",
                                                          "DBT_TARGET_PATH": str(target)}, Path(database))

        def sql(statement: str, params: tuple = ()) -> list[tuple]:
            return postgres_server.execute(postgres, database, statement, params)

        yield made, sql


def whole_loop(stack: Stack, sql: Callable[..., list[tuple]], schema: str) -> None:
    people = sql(f"select count(*) from {schema}.cio_people")[0][0]
    vip = sql(f"select count(*) from {schema}.{VIP} where email_sha256 is not null")[0][0]   # what Microsoft takes
    plan = by_sync(stack.pusher("plan"))
    assert plan["cio_people"]["plan"]["updates"] == people > 300
    assert plan["msads_list_vip_high_ltv"]["plan"]["adds"] == vip > 10

    first = stack.pusher("sync")
    assert first["exit_code"] == 0
    assert by_sync(first)["cio_people"]["sent"]["updates"] == people
    stack.assert_destinations_equal_warehouse()

    before = stack.requests()
    again = stack.pusher("sync")
    assert stack.requests() == before, "a no-change rerun must not send a single request"
    assert all(item["requests"] == 0 for item in again["syncs"])

    # Churn: two VIPs leave, a person who is in no VIP list joins.
    leaving = [row[0] for row in sql(f"select customer_id from {schema}.{VIP} where email_sha256 is not null "
                                     "order by customer_id limit 2")]
    joining = sql(f"select customer_id from {schema}.cio_people where email is not null and customer_id not in "
                  f"(select customer_id from {schema}.{VIP}) order by customer_id limit 1")[0][0]
    sql(f"delete from {schema}.{VIP} where customer_id in (%s, %s)", tuple(leaving))
    sql(f"insert into {schema}.{VIP} (customer_id, email_sha256, phone_sha256, audience_name, list_name, "
        "exclusivity_group, entered_at, member_fingerprint) select p.customer_id, "
        "encode(sha256(convert_to(p.email, 'UTF8')), 'hex'), null, a.audience_name, a.list_name, a.exclusivity_group, "
        # a wrong fingerprint on purpose: the pusher's copy computes its own
        f"a.entered_at, 0 from {schema}.cio_people as p "
        f"cross join (select * from {schema}.{VIP} limit 1) as a where p.customer_id = %s", (joining,))
    churn = by_sync(stack.pusher("sync"))
    for name in ("msads_list_vip_high_ltv", "cio_segment_vip_high_ltv"):
        assert (churn[name]["sent"]["adds"], churn[name]["sent"]["removes"]) == (1, 2), churn[name]
    others = [name for name, item in churn.items() if item["requests"] and "vip_high_ltv" not in name]
    assert not others, f"only the VIP lists changed, yet {others} sent requests"
    stack.assert_destinations_equal_warehouse()

    # A first name Customer.io refuses (over 1000 bytes): rejected, retried, sent once fixed.
    person = sql(f"select min(customer_id) from {schema}.cio_people")[0][0]
    sql(f"update {schema}.cio_people set first_name = repeat('x', 1100) where customer_id = %s", (person,))
    for _ in range(2):                      # the second run retries the row and is refused again
        rejected = stack.pusher("sync", ok=(3,))
        assert by_sync(rejected)["cio_people"]["rejected"] == 1
    sql(f"update {schema}.cio_people set first_name = 'Retried' where customer_id = %s", (person,))
    fixed = stack.pusher("sync")
    assert by_sync(fixed)["cio_people"]["sent"]["updates"] == 1
    attributes = fetch_states(stack.cio_url, None)["customerio"]["people"][person]["attributes"]
    assert attributes["first_name"] == "Retried"
    stack.assert_destinations_equal_warehouse()


def test_the_whole_loop_on_postgres(postgres_stack):
    stack, sql = postgres_stack
    whole_loop(stack, sql, "retention")
