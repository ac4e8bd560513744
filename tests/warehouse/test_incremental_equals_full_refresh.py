"""Incremental models (staging, identity, state) equal a full rebuild of the same data (real
DuckDB builds of a copy of the project). The demo is built, then new exports arrive three times and
are built incrementally, as a scheduled `dbt build` would: an orders export running behind the
refunds and customers exports, late exports carrying an older
timestamp, a newer export with a blank value, re-exported orders and a new refund, a new store
account that takes a loyalty account from the person who held it (who then has none) and one that
claims an orphan account, a new account created long ago joining a person by email (whose earlier
creation re-ranks a shared order email, moving a record), two current emails changing (a loyalty
account moving with its email), an order whose store account only arrives in the next export, an export
from the future that a later as_of releases, and a late file (export times older than the ones
held) read with a lookback, and three days passing with no new export. Then every incremental model is rebuilt with --full-refresh on a
copy of that warehouse and compared with the incremental one, every column, row for row.
(The identity map is append-only by design and not rebuilt: --full-refresh reassigns its ids.)
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from tests.conftest import copy_project, run_dbt

IDENTITY_MAP = "int_identity__store_account_map"
# how far int_identity__source_records has matched: moved only by a build of the whole identity
# chain, which --full-refresh cannot be (it would reassign the identity map's ids)
MATCH_MARKS = "int_identity__source_records_matched_through"
# what cio_objects_orders has seen: its customer mark moves only in a build that also runs
# int_customer_profile__joined, customer_profile and cio_people, which the --full-refresh of the
# incremental models does not
ORDER_MARKS = "int_cio_objects_orders__seen_through"
STAGING = ["stg_back_in_stock__back_in_stock_requests", "stg_loyalty__loyalty_accounts", "stg_returns__returns",
           "stg_reviews__reviews", "stg_store__customers", "stg_store__order_lines", "stg_store__orders",
           "stg_store__refunds", "stg_subscriptions__subscription_events", "stg_web_events__web_events"]
AUDIENCES = ["aud_cart_abandon_0_1d", "aud_cart_abandon_1_3d", "aud_cart_abandon_high_value_0_1d",
             "aud_cart_abandon_high_value_1_3d", "aud_lapsed_120d_plus", "aud_lapsed_60_90d", "aud_lapsed_90_120d",
             "aud_lapsed_high_aov_60d_plus", "aud_post_purchase_cross_sell_7_21d", "aud_purchased_once_21_45d",
             "aud_suppress_no_discount", "aud_suppress_open_returns", "aud_suppress_recent_purchasers_0_7d",
             "aud_vip_high_ltv"]
INCREMENTAL_MODELS = sorted(["int_identity__people", "int_identity__store_customers", "int_loyalty__state",
                             "int_orders__state", "int_returns__state", "int_store_customers_merged",
                             "int_subscriptions__state", *STAGING, "rejected_inputs", "int_identity__account_emails",
                             "int_rejected_inputs__checked_through", "int_identity__source_record_exports",
                             "cio_people", "cio_objects_orders", "audience_membership",
                             "int_identity__source_records", "int_customer_profile__joined",
                             "int_identity__emails", "cio_events", "identity_conflicts", "int_carts_abandoned",
                             "cio_objects_subscriptions", *AUDIENCES])
# the last build runs later, releasing the export quarantined as exported in the future, and
# with a lookback, as a source that can deliver a late file needs (LATE_EXPORTS)
LATER_AS_OF = "2026-11-20 14:00:00"
LOOKBACK_HOURS = 2
# then three days pass with no new export: rows that depend on as_of change (freshness, windows)
NEXT_DAY_AS_OF = "2026-11-23 14:00:00"

FIRST_EXPORTS = {
    "store/raw_store__customers.csv": [
        "C9999,phone.old@example.com,+1 (415) 555-0197,Phone,Old,US,true,2026-11-18 12:00:00,2026-11-18 12:00:00,2026-11-20 11:00:00",
        # bob.old is C9010's previous email, which matched loyalty account LA-9010 to him: a new
        # account whose current email it is takes the account (C9010 has no other)
        "C9990,bob.old@example.com,,Robert,Old,US,true,2026-11-19 12:00:00,2026-11-19 12:00:00,2026-11-20 11:00:00",
        # the orphan loyalty account LA-ORPHAN finds its person
        "C9991,nobody.here@example.com,,No,Body,US,true,2026-11-19 12:00:00,2026-11-19 12:00:00,2026-11-20 11:00:00",
        # a newer snapshot: the name and consent change, the blank phone wipes nothing
        "C9001,alice.capital@example.com,,Alicia,Capital,US,false,2025-10-16 12:00:00,2026-11-19 12:00:00,2026-11-20 11:00:00",
        # a late export of an older snapshot reverts nothing
        "C9002,gb.phone@example.com,,Old,Name,GB,false,2025-10-16 12:00:00,2025-10-16 12:00:00,2026-11-20 11:00:00",
        # a phone that makes no E.164 number: nulled, listed in rejected_inputs
        "C9994,phone.bad@example.com,12,Phone,Bad,US,true,2026-11-19 12:00:00,2026-11-19 12:00:00,2026-11-20 11:00:00",
        # the customers export runs ahead of the orders export (ORDERS_BEHIND_REFUNDS)
        "C9989,ahead.customer@example.com,,Ahead,Customer,US,true,2026-11-19 12:00:00,2026-11-19 12:00:00,2026-11-20 11:20:00",
    ],
    "store/raw_store__orders.csv": [
        "O00001,C9001,alice.capital@example.com,2026-05-04 12:00:00,refunded,60.00,USD,2026-11-20 11:00:00",
        "O-NEW-1,C9990,bob.old@example.com,2026-11-19 18:00:00,paid,75.00,USD,2026-11-20 11:00:00",
        # its store account arrives with the next exports
        "O-WAIT-1,C9992,wait.later@example.com,2026-11-19 19:00:00,paid,55.00,USD,2026-11-20 11:00:00",
        # a negative amount, quarantined, and the latest order export: staging holds up to 11:00
        "O-NEG-1,C9001,alice.capital@example.com,2026-11-19 20:00:00,paid,-5.00,USD,2026-11-20 11:15:00",
        # two people order with the same guest email: the earlier-created (C0005) gets it, until
        # the next export makes C0001's person older
        "O-GUEST-1,C0001,guest.shared@example.com,2026-11-19 19:00:00,paid,20.00,USD,2026-11-20 11:00:00",
        "O-GUEST-2,C0005,guest.shared@example.com,2026-11-19 19:30:00,paid,20.00,USD,2026-11-20 11:00:00",
    ],
    "back_in_stock/raw_back_in_stock__back_in_stock_requests.csv": [
        "BIS-GUEST,guest.shared@example.com,,P002,2026-11-19 20:00:00,,2026-11-20 11:00:00",
        # a phone no person has yet: an orphan until the next export brings an account with it
        "BIS-PHONE,,+1 415 555 0199,P003,2026-11-19 20:00:00,,2026-11-20 11:00:00",
        # C9999's phone, until the next export changes it: then an orphan
        "BIS-PHONE2,,+1 415 555 0197,P003,2026-11-19 20:00:00,,2026-11-20 11:00:00",
    ],
    "store/raw_store__refunds.csv": [
        "R-NEW-1,O00002,2026-11-19 20:00:00,30.00,2026-11-20 11:00:00",
        # the refunds export runs ahead of the orders export (ORDERS_BEHIND_REFUNDS)
        "R-AHEAD-1,O00202,2026-11-19 21:00:00,10.00,2026-11-20 11:20:00",
    ],
    "loyalty/raw_loyalty__loyalty_accounts.csv": [
        # late export of an older snapshot: must not revert gold / 3000
        "LA-9031,dan.tier@example.com,100,bronze,2026-08-01 12:00:00,2026-11-20 11:00:00",
        # newer snapshot with a blank tier: points update, platinum stays
        "LA-9040,erin.blank@example.com,6100, ,2026-11-20 09:00:00,2026-11-20 11:00:00",
        # exported after as_of (14:30 > 12:00 + 1 h): quarantined, until the third build's
        # later as_of releases it (rejected_inputs must then drop its quarantine row)
        "LA-9040,erin.blank@example.com,6200,,2026-11-20 10:30:00,2026-11-20 14:30:00",
    ],
    "subscriptions/raw_subscriptions__subscription_events.csv": [
        # late export of an older change: S-9030 stays cancelled
        "SE-9030-0,S-9030,carol.late@example.com,,active,2026-09-01 08:00:00,2026-11-20 11:00:00",
        # a newer change: S-9070 pauses
        "SE00003-B,S-9070,hank.back@example.com,C9070,paused,2026-11-19 07:00:00,2026-11-20 11:00:00",
    ],
    "returns/raw_returns__returns.csv": [
        # a return without an email whose order only arrives with the next export: an orphan until
        # its order brings the store account
        "RT-WAIT,O-WAIT-2,,requested,2026-11-19 12:00:00,2026-11-20 11:00:00",
        # late export of an older status: RT-9101 stays refunded (closed)
        "RT-9101,O00015,leo.final@example.com,requested,2026-11-01 12:00:00,2026-11-20 11:00:00",
        # a newer status: RT-9100 is received
        "RT-9100,O00014,Kim.Return@example.com,received,2026-11-19 12:00:00,2026-11-20 11:00:00",
    ],
}

SECOND_EXPORTS = {
    # its order was exported at 11:00 and is found as an order not held yet, not by export time
    "store/raw_store__customers.csv": [
        "C9992,wait.later@example.com,,Wait,Later,US,true,2026-11-18 12:00:00,2026-11-18 12:00:00,2026-11-20 11:30:00",
        # an invalid email, nulled
        "C9995,bad..dots@example.com,,Bad,Dots,US,true,2026-11-18 12:00:00,2026-11-18 12:00:00,2026-11-20 11:30:00",
        # a new account with C0001's email, created long before it, joins C0001's person, which is
        # now the earliest-created holder of the guest email: BIS-GUEST moves from C0005 to C0001
        "C9997,ben.jones1@example.com,,Ben,Jones,US,true,2024-01-01 12:00:00,2024-01-01 12:00:00,2026-11-20 11:30:00",
        # two emails change: C0003 takes over C0002's email, which C0002 leaves, so the current
        # email beats the previous one and loyalty account LA-C0002 moves from C0002 to C0003
        "C0002,chloe.new2@example.com,07700 900002,Chloe,Brown,GB,true,2026-04-24 12:00:00,2026-11-20 10:00:00,2026-11-20 11:30:00",
        "C0003,chloe.brown2@example.com,+49 151 0000003,Dev,Taylor,DE,true,2026-05-22 12:00:00,2026-11-20 10:00:00,2026-11-20 11:30:00",
        # a new account with BIS-PHONE's phone, and C9999 changing its phone: each request moves
        # with no export of its own
        "C9998,phone.new@example.com,+1 (415) 555-0199,Phone,New,US,true,2026-11-18 12:00:00,2026-11-18 12:00:00,2026-11-20 11:30:00",
        "C9999,phone.old@example.com,+1 (415) 555-0196,Phone,Old,US,true,2026-11-18 12:00:00,2026-11-20 11:20:00,2026-11-20 11:30:00",
    ],
    "store/raw_store__orders.csv": [
        # RT-WAIT's order: the return takes C0004's store id with no export of its own
        "O-WAIT-2,C0004,ella.wilson4@example.com,2026-11-18 19:00:00,paid,35.00,USD,2026-11-20 11:05:00",
        # exported before the quarantined O-NEG-1 but after the orders staging held: read by
        # staging, and so by rejected_inputs, whose mark is staging's, not the raw table's
        "O-LATE-1,C9001,no-at-sign.example.com,2026-11-19 21:00:00,paid,15.00,USD,2026-11-20 11:10:00",
        # ORDERS_BEHIND_REFUNDS: an order held since the first build, exported again at 11:10 with a
        # new status and a new email for its account, after refunds and customers exported at 11:20
        # were built: each input is read from its own latest export, so neither change is lost
        "O00202,C0134,omar.second@example.com,2026-10-15 07:58:19,refunded,80.00,USD,2026-11-20 11:10:00",
    ],
    # the reviews export runs hours behind the web events: each system is read from its own
    # latest export (int_identity__source_record_exports), not from the latest of any system
    "reviews/raw_reviews__reviews.csv": [
        "RV-NEW-1,alice.capital@example.com,P009,5,2026-11-20 05:30:00,2026-11-20 06:00:00",
    ],
    "loyalty/raw_loyalty__loyalty_accounts.csv": [
        # a blank tier and NULL points arriving later still wipe nothing
        "LA-9031,dan.tier@example.com,,,2026-11-20 10:00:00,2026-11-20 11:30:00",
    ],
}


# a late file: exported before the accounts held (11:30), read by the last build's lookback
LATE_EXPORTS = {
    "store/raw_store__customers.csv": [
        "C9993,late.file@example,,Late,File,US,true,2026-11-18 12:00:00,2026-11-18 12:00:00,2026-11-20 10:45:00",
    ],
}


def append_rows(project: Path, exports: dict[str, list[str]]) -> None:
    for seed, rows in exports.items():
        with (project / "seeds" / seed).open("a") as handle:
            handle.write("".join(row + "\n" for row in rows))


def incremental_models(workdir: Path, target: str) -> list[str]:
    manifest = json.loads((workdir / target / "manifest.json").read_text())
    return sorted(
        node["name"] for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["config"]["materialized"] == "incremental"
        and node["name"] not in (IDENTITY_MAP, MATCH_MARKS, ORDER_MARKS)
    )


def all_rows(database: Path, table: str) -> tuple[list[str], Counter]:
    with duckdb.connect(str(database), read_only=True) as con:
        cursor = con.execute(f"select * from main.{table}")
        columns = [column[0] for column in cursor.description]
        return columns, Counter(cursor.fetchall())


def query(database: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(database), read_only=True) as con:
        return con.execute(sql).fetchall()


def read_orders_behind(database: Path) -> list[tuple]:
    """ORDERS_BEHIND_REFUNDS: the order's status, refunds and new email pair as built, its status
    as a Customer.io object, and the orders exported at 11:05 and 11:10 that became objects."""
    return query(database, "select financial_status, refunded_amount, (select rule_rank from int_identity__account_emails "
                           "where store_customer_id = 'C0134' and email = 'omar.second@example.com'), "
                           "(select status from cio_objects_orders where object_id = 'O00202'), "
                           "(select count(*) from cio_objects_orders where object_id in ('O-WAIT-2', 'O-LATE-1')) "
                           "from int_orders__state where order_id = 'O00202'")


def records_matched(database: Path) -> list[tuple]:
    return query(database, "select source_record_id, customer_id, match_rule from int_identity__source_records "
                           "where source_record_id in ('BIS-PHONE', 'BIS-PHONE2', 'RT-WAIT') order by 1")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("incremental")
    project = workdir / "project"
    copy_project(project)
    incremental = workdir / "incremental.duckdb"

    first = run_dbt(workdir, "build", database=incremental, project=project, target="target-first")
    assert first.not_passing() == [], first.output()
    before = {
        "loyalty": query(incremental, "select customer_id from int_loyalty__state where customer_id in ('C9010', 'C9990')"),
        "orphan": query(incremental, "select customer_id from int_identity__source_records "
                                     "where source_record_id = 'LA-ORPHAN'"),
        "remapped": query(incremental, "select customer_id from int_identity__source_records "
                                       "where source_record_id = 'LA-C0002'"),
    }
    matched = {}

    append_rows(project, FIRST_EXPORTS)
    second = run_dbt(workdir, "build", database=incremental, project=project, target="target-second")
    assert [failure for failure in second.not_passing() if "no_exports_from_the_future" not in failure] == [], \
        second.output()
    quarantined = query(incremental, "select count(*) from rejected_inputs where reason = 'exported_in_future'")
    guest_before = query(incremental, "select customer_id from int_identity__source_records "
                                      "where source_record_id = 'BIS-GUEST'")
    held_back = query(incremental, "select (select count(*) from stg_store__orders where order_id = 'O-WAIT-1'), "
                                   "(select count(*) from int_orders__state where order_id = 'O-WAIT-1')")
    matched["second"] = records_matched(incremental)

    append_rows(project, SECOND_EXPORTS)
    third = run_dbt(workdir, "build", database=incremental, project=project, target="target-third")
    assert [failure for failure in third.not_passing() if "no_exports_from_the_future" not in failure] == [], \
        third.output()
    matched["third"] = records_matched(incremental)
    # before the last builds' lookback reads the orders again
    orders_behind = read_orders_behind(incremental)
    waiting_order_object = query(incremental, "select object_id, customer_id from cio_objects_orders "
                                              "where object_id = 'O-WAIT-1'")

    append_rows(project, LATE_EXPORTS)
    fourth = run_dbt(workdir, "build", "--vars", f"{{incremental_lookback_hours: {LOOKBACK_HOURS}}}",
                     database=incremental, project=project, target="target-fourth", as_of=LATER_AS_OF)
    assert fourth.not_passing() == [], fourth.output()
    matched["fourth"] = records_matched(incremental)
    people_before_next_day = all_rows(incremental, "cio_people")[1]
    # the stale data of the next day empties the audiences: their merge must delete every member
    members_before_next_day = {audience: query(incremental, f"select count(*) from {audience}")[0][0]
                               for audience in AUDIENCES}

    # `run`: the data is now too old for the freshness tests, which a build would fail on
    fifth = run_dbt(workdir, "run", "--vars", f"{{incremental_lookback_hours: {LOOKBACK_HOURS}}}",
                    database=incremental, project=project, target="target-fifth", as_of=NEXT_DAY_AS_OF)
    assert fifth.not_passing() == [], fifth.output()

    models = incremental_models(workdir, "target-fifth")
    full = workdir / "full.duckdb"
    shutil.copy(incremental, full)
    rebuilt = run_dbt(workdir, "run", "--full-refresh", "--select", *models,
                      database=full, project=project, target="target-full", as_of=NEXT_DAY_AS_OF)
    assert rebuilt.not_passing() == [], rebuilt.output()
    return {"workdir": workdir, "project": project,
            "incremental": incremental, "full": full, "models": models, "before": before,
            "held_back": held_back, "waiting_order_object": waiting_order_object, "guest_before": guest_before, "quarantined": quarantined, "matched": matched,
            "incremental_runs": [second, third, fourth, fifth], "orders_behind": orders_behind,
            "people_before_next_day": people_before_next_day, "members_before_next_day": members_before_next_day}


def test_the_state_models_are_incremental(built):
    assert built["models"] == INCREMENTAL_MODELS
    # the later builds really merged into the tables they held (dbt says so in its log)
    for run in built["incremental_runs"]:
        assert "int_loyalty__state" in run.completed.stdout
    # the days that passed with no new export changed people's rows (the case is real)
    assert all_rows(built["incremental"], "cio_people")[1] != built["people_before_next_day"]
    # the order had arrived without its store account, so it was not held yet: the case is real
    assert built["held_back"] == [(1, 0)]
    # the export from the future was quarantined in the second build and released in the last
    assert built["quarantined"] == [(1,)]
    assert query(built["incremental"], "select count(*) from rejected_inputs where reason = 'exported_in_future'") \
        == [(0,)]
    assert query(built["incremental"], "select points_balance from stg_loyalty__loyalty_accounts "
                                       "where exported_at = timestamp '2026-11-20 14:30:00'") == [(6200,)]
    # the late file was read: its account is staged and its invalid email listed
    assert query(built["incremental"], "select count(*) from stg_store__customers where store_customer_id = 'C9993'") \
        == [(1,)]
    assert query(built["incremental"], "select reason from rejected_inputs where source_record_id = 'C9993'") \
        == [("email_domain_without_dot",)]
    # each rejection was listed by the build that first read it, and the marks moved on
    assert query(built["incremental"], "select source_record_id, field, reason from rejected_inputs "
                                       "where source_record_id in ('C9994', 'C9995', 'O-NEG-1', 'O-LATE-1') "
                                       "order by 1") \
        == [("C9994", "phone", "phone_not_e164"), ("C9995", "email", "email_with_consecutive_dots"),
            ("O-LATE-1", "email", "email_without_at_sign"), ("O-NEG-1", "total_price", "negative_amount")]
    assert query(built["incremental"], "select checked_through from int_rejected_inputs__checked_through "
                                       "where source_table in ('customers', 'orders') order by source_table") \
        == [(datetime(2026, 11, 20, 11, 30),), (datetime(2026, 11, 20, 11, 10),)]


@pytest.mark.parametrize("model", INCREMENTAL_MODELS)
def test_incremental_equals_full_refresh(built, model):
    incremental_columns, incremental_rows = all_rows(built["incremental"], model)
    full_columns, full_rows = all_rows(built["full"], model)
    assert incremental_columns == full_columns
    assert full_rows or built["members_before_next_day"].get(model), f"{model} is and was empty: nothing was compared"
    only_incremental, only_full = incremental_rows - full_rows, full_rows - incremental_rows
    assert not only_incremental and not only_full, (
        f"{model}: {sum(only_incremental.values())} rows only in the incremental build, e.g. "
        f"{list(only_incremental)[:3]}; {sum(only_full.values())} only in the full refresh, e.g. {list(only_full)[:3]}")


def test_the_rules_hold_in_the_incremental_build(built):
    database = built["incremental"]
    assert query(database, "select vip_tier, loyalty_points from int_loyalty__state where customer_id = 'C9031'") \
        == [("gold", 3000)]
    assert query(database, "select vip_tier, loyalty_points from int_loyalty__state where customer_id = 'C9040'") \
        == [("platinum", 6200)]
    assert query(database, "select subscription_status from int_subscriptions__state where customer_id = 'C9030'") \
        == [("cancelled",)]
    assert query(database, "select subscription_status from int_subscriptions__state where customer_id = 'C9070'") \
        == [("paused",)]
    assert query(database, "select return_status, has_open_return from int_returns__state "
                           "where customer_id = 'C9101'") == [("refunded", False)]
    assert query(database, "select store_customer_id, first_name, phone_e164, accepts_marketing "
                           "from int_store_customers_merged where store_customer_id in ('C9001', 'C9002') order by 1") \
        == [("C9001", "Alicia", "+14155550101", False), ("C9002", "Gwen", "+447700900123", True)]
    assert query(database, "select financial_status, refunded_amount from int_orders__state "
                           "where order_id in ('O00001', 'O00002') order by order_id") \
        == [("refunded", 0), ("paid", 30)]


def test_identity_changes_move_state_between_people(built):
    database = built["incremental"]
    assert built["before"]["loyalty"] == [("C9010",)]
    assert built["before"]["orphan"] == [(None,)]
    assert query(database, "select customer_id from int_loyalty__state where customer_id in ('C9010', 'C9990')") \
        == [("C9990",)]
    assert query(database, "select count(*) from int_loyalty__state where customer_id = 'C9991'") == [(1,)]
    assert query(database, "select customer_id from int_orders__state where order_id = 'O-WAIT-1'") == [("C9992",)]


def test_rejected_inputs_mark_moves_only_when_rejected_inputs_ran(built, tmp_path):
    """A build that stages new rows without running rejected_inputs must not move its mark past
    them: the next rejected_inputs build still lists their rejections."""
    project = tmp_path / "project"
    shutil.copytree(built["project"], project)
    database = tmp_path / "warehouse.duckdb"
    shutil.copy(built["incremental"], database)
    append_rows(project, {"store/raw_store__customers.csv": [
        "C9996,two@@example.com,,Two,Ats,US,true,2026-11-19 12:00:00,2026-11-19 12:00:00,2026-11-20 12:30:00"]})
    staged = run_dbt(tmp_path, "build", "--select", "raw_store__customers", "stg_store__customers",
                     "int_rejected_inputs__checked_through", database=database, project=project,
                     target="target-staged", as_of=LATER_AS_OF)
    assert staged.not_passing() == [], staged.output()
    assert query(database, "select count(*) from stg_store__customers where store_customer_id = 'C9996'") == [(1,)]
    listed = run_dbt(tmp_path, "run", "--select", "rejected_inputs", database=database, project=project,
                     target="target-listed", as_of=LATER_AS_OF)
    assert listed.not_passing() == [], listed.output()
    assert query(database, "select reason from rejected_inputs where source_record_id = 'C9996'") \
        == [("email_with_several_at_signs",)]


def test_merges_and_changed_emails_remap_records(built):
    database = built["incremental"]
    # a new account joined C0001's person and made it the earliest-created: the guest email moved
    assert built["guest_before"] == [("C0005",)]
    assert query(database, "select customer_id, created_at from int_identity__people where customer_id = 'C0001'") \
        == [("C0001", query(database, "select created_at from int_store_customers_merged "
                                      "where store_customer_id = 'C9997'")[0][0])]
    assert query(database, "select customer_id from int_identity__source_records where source_record_id = 'BIS-GUEST'") \
        == [("C0001",)]
    # C0003 took over C0002's email and C0002 left it: the loyalty account moved with the email
    assert built["before"]["remapped"] == [("C0002",)]
    assert query(database, "select customer_id from int_identity__source_records where source_record_id = 'LA-C0002'") \
        == [("C0003",)]
    assert query(database, "select customer_id from int_loyalty__state where customer_id in ('C0002', 'C0003')") \
        == [("C0003",)]


def test_marts_kept_by_difference_drop_and_replace_held_rows(built, tmp_path):
    """A mart kept by difference deletes a held row whose key it no longer yields (a person or
    order that left) and replaces a held row whose values changed, whatever the upstream change
    was: held rows edited by hand play both, and the next build must equal the full refresh.
    cio_objects_orders, incremental, only drops the orders it no longer yields."""
    project = tmp_path / "project"
    shutil.copytree(built["project"], project)
    database = tmp_path / "warehouse.duckdb"
    shutil.copy(built["incremental"], database)
    with duckdb.connect(str(database)) as con:
        con.execute("insert into cio_people (customer_id, email) values ('C-GONE', 'gone@example.com')")
        con.execute("update cio_people set first_name = 'Stale', is_data_fresh = not is_data_fresh "
                    "where customer_id = 'C0001'")
        con.execute("insert into int_customer_profile__joined (customer_id, email) values ('C-GONE', 'gone@example.com')")
        con.execute("update int_customer_profile__joined set first_name = 'Stale', order_count = order_count + 1 "
                    "where customer_id = 'C0001'")
        # cio_objects_orders recomputes only the orders changed upstream (a value edited by hand
        # stays), but drops an order it no longer yields and one of a person who left cio_people
        con.execute("insert into cio_objects_orders (object_id, customer_id) values ('O-GONE', 'C0001')")
        con.execute("insert into cio_objects_orders (object_id, customer_id) values ('O-GONE-2', 'C-GONE')")
        # a member of an audience it left (its person is still a member of others)
        con.execute("insert into audience_membership (customer_id, audience_name) "
                    "select customer_id, 'aud_left' from audience_membership limit 1")
        con.execute("update audience_membership set entered_at = entered_at + interval 1 day "
                    "where customer_id = (select min(customer_id) from audience_membership)")
    kept_by_difference = ("int_customer_profile__joined", "cio_people", "cio_objects_orders", "audience_membership")
    rerun = run_dbt(tmp_path, "run", "--select", *kept_by_difference, database=database,
                    project=project, target="target-rerun", as_of=NEXT_DAY_AS_OF)
    assert rerun.not_passing() == [], rerun.output()
    for model in kept_by_difference:
        assert all_rows(database, model) == all_rows(built["full"], model), model


def test_models_merged_whole_write_only_the_rows_that_changed(built, tmp_path):
    """int_identity__emails and cio_events compute every row, and one MERGE inserts the keys not
    held, updates the held rows whose values changed and deletes the held keys no longer yielded
    (held rows edited by hand play each case); every other held row keeps its place among them
    (DuckDB's row order), so the table was merged into, not rewritten."""
    project = tmp_path / "project"
    shutil.copytree(built["project"], project)
    database = tmp_path / "warehouse.duckdb"
    shutil.copy(built["incremental"], database)
    merged = {
        "int_identity__emails": ("email, customer_id", "is_match = not is_match",
                                 "('gone@example.com', 'C-GONE', 'order_email', true)"),
        "cio_events": ("event_id", "status = 'stale'",
                       "('gone', 'C-GONE', 'order_placed', timestamp '2026-11-20', null, null, null, null)"),
    }
    untouched = {}
    with duckdb.connect(str(database)) as con:
        for model, (key, edit, gone_row) in merged.items():
            # held in an order no query of the model yields, so a rewrite cannot keep it
            con.execute(f"create or replace table {model} as select * from {model} order by md5(concat({key}))")
            removed, changed = (f"concat({key}) = (select concat({key}) from {model} order by {key} "
                                f"limit 1 offset {offset})" for offset in (0, 1))
            con.execute(f"delete from {model} where {removed}")
            con.execute(f"update {model} set {edit} where {changed}")
            untouched[model] = con.execute(f"select * from {model} where not {changed} order by rowid").fetchall()
            con.execute(f"insert into {model} values {gone_row}")
    rerun = run_dbt(tmp_path, "run", "--select", *merged, database=database,
                    project=project, target="target-rerun", as_of=NEXT_DAY_AS_OF)
    assert rerun.not_passing() == [], rerun.output()
    for model in merged:
        assert all_rows(database, model) == all_rows(built["full"], model), model
        held_in_order = query(database, f"select * from {model} order by rowid")
        assert [row for row in held_in_order if row in set(untouched[model])] == untouched[model], model


def test_records_rematch_when_only_the_store_data_changed(built):
    """A record with no new export of its own is matched again when a new store account brings its
    phone, when its person's phone changes, and when its order arrives with a store account (the
    third build, without a lookback that would read the records again anyway)."""
    assert built["matched"]["second"] == [("BIS-PHONE", None, None), ("BIS-PHONE2", "C9999", "phone"),
                                          ("RT-WAIT", None, None)]
    assert built["matched"]["third"] == [("BIS-PHONE", "C9998", "phone"), ("BIS-PHONE2", None, None),
                                         ("RT-WAIT", "C0004", "store_customer_id")]
    assert built["matched"]["fourth"] == built["matched"]["third"]
    # the incremental builds held marks, so they matched only what could have moved
    assert query(built["incremental"], f"select source_table, matched_through from {MATCH_MARKS} "
                                       "where source_system = 'store' order by 1") \
        == [("customers", datetime(2026, 11, 20, 11, 30)), ("orders", datetime(2026, 11, 20, 11, 10))]


def test_order_objects_marks_hold_what_the_last_build_saw(built):
    """The incremental builds moved cio_objects_orders' marks to the latest order export, the
    latest refund export and the latest person store export, so the next build recomputes only
    orders exported, or with a refund exported, after them."""
    assert query(built["incremental"], f"select source_table, seen_through from {ORDER_MARKS} order by 1") \
        == query(built["incremental"], "select 'customers', max(store_last_exported_at) from int_identity__people "
                                       "union all select 'orders', max(orders_last_exported_at) from int_orders__state "
                                       "union all select 'refunds', max(refunds_last_exported_at) from int_orders__state "
                                       "order by 1")


def test_an_order_whose_account_arrives_later_becomes_an_object_at_once(built):
    """O-WAIT-1 was exported before the last order export cio_objects_orders had seen, and entered
    int_orders__state only when its store account arrived: the build that brought the account made
    it an object (through its person's new store export), before the lookback build read it anyway."""
    assert built["waiting_order_object"] == [("O-WAIT-1", "C9992")]


def test_each_input_is_read_from_its_own_latest_export(built):
    """ORDERS_BEHIND_REFUNDS: the orders export ran behind the refunds and customers exports; a
    model reading two of them keeps a mark per input, so the order's later snapshot (built with
    no lookback) is not taken for old news because another input was exported after it."""
    assert built["orders_behind"] == [("refunded", 10, 3, "refunded", 2)]
    assert read_orders_behind(built["incremental"]) == [("refunded", 10, 3, "refunded", 2)]


def test_a_table_built_without_a_mark_column_asks_for_a_full_refresh(built, tmp_path):
    """A warehouse built by an earlier version lacks the per-input marks: the incremental build
    stops with what to run instead of a binder error, and the full refresh it names works."""
    database = tmp_path / "warehouse.duckdb"
    shutil.copy(built["incremental"], database)
    with duckdb.connect(str(database)) as con:
        con.execute("alter table int_orders__state drop column refunds_last_exported_at")
    stopped = run_dbt(tmp_path, "run", "--select", "int_orders__state", database=database,
                      project=built["project"], target="target-old", as_of=NEXT_DAY_AS_OF)
    assert stopped.completed.returncode != 0
    assert ("int_orders__state was built by an earlier version, without the column(s) refunds_last_exported_at: "
            "run `dbt run --full-refresh -s int_orders__state` once") in stopped.completed.stdout
    refreshed = run_dbt(tmp_path, "run", "--full-refresh", "--select", "int_orders__state", database=database,
                        project=built["project"], target="target-refreshed", as_of=NEXT_DAY_AS_OF)
    assert refreshed.not_passing() == [], refreshed.output()
    assert all_rows(database, "int_orders__state") == all_rows(built["full"], "int_orders__state")
