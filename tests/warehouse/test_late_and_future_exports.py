"""Identity stability and export times over the real DuckDB build: a copy of the project is
built, then rebuilt (incrementally, as a scheduled `dbt build` would) after new raw rows arrive:
a new store account that shares an existing customer's email and claims an earlier created_at;
an existing customer who changes to another existing customer's email; a storefront event
exported first with one person's email and later with another person's store id; and a loyalty
export stamped in 2030 for a customer whose data is stale."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import pytest

from tests.conftest import copy_project, run_dbt

LATE_ACCOUNT = ("C9999,Alice.Capital@example.com,,Alice,Capital,US,true,"
                "2020-01-01 00:00:00,2026-11-20 10:00:00,2026-11-20 11:00:00\n")
EMAIL_TAKEN_BY_ANOTHER_PERSON = ("C9003,gb.phone@example.com,(415) 555-0134,Uma,Stone,US,true,"
                                 "2025-10-16 12:00:00,2026-11-20 09:00:00,2026-11-20 10:00:00\n")
# a storefront event whose newest export carries only C9002's email, an older one C9003's store id
# (both exported after the events held, 12:24: an incremental build reads only those)
EVENT_MATCHED_BY_TWO_RULES = (
    "W-XRULE,anon-x,,gb.phone@example.com,product_viewed,P001,,2026-11-17 05:00:00,2026-11-20 12:40:00\n"
    "W-XRULE,anon-x,C9003,,product_viewed,P001,,2026-11-17 05:00:00,2026-11-20 12:30:00\n")
FUTURE_LOYALTY_EXPORT = "LA-9080,ivy.stale@example.com,9100,gold,2026-11-19 12:00:00,2030-01-01 00:00:00\n"


def query(database: Path, sql: str, *parameters) -> list[tuple]:
    with duckdb.connect(str(database), read_only=True) as con:
        return con.execute(sql, list(parameters)).fetchall()


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("late-exports")
    project = workdir / "project"
    copy_project(project)
    database = workdir / "w.duckdb"

    first = run_dbt(workdir, "build", database=database, project=project, target="target-first")
    assert first.not_passing() == [], first.output()
    before = {
        "people": query(database, "select customer_id, email_sha256 from customer_profile where customer_id = 'C9001'"),
        "audiences": query(database, "select audience_name, customer_id, email_sha256 from audience_membership "
                                     "where customer_id = 'C9001' order by 1"),
    }

    with (project / "seeds/store/raw_store__customers.csv").open("a") as handle:
        handle.write(LATE_ACCOUNT + EMAIL_TAKEN_BY_ANOTHER_PERSON)
    with (project / "seeds/web_events/raw_web_events__web_events.csv").open("a") as handle:
        handle.write(EVENT_MATCHED_BY_TWO_RULES)
    with (project / "seeds/loyalty/raw_loyalty__loyalty_accounts.csv").open("a") as handle:
        handle.write(FUTURE_LOYALTY_EXPORT)
    second = run_dbt(workdir, "build", database=database, project=project, target="target-second")
    return workdir, project, database, before, second


def test_the_rebuild_passes_with_only_the_future_export_warning(rebuilt):
    _, _, _, _, second = rebuilt
    not_passing = second.not_passing()
    assert len(not_passing) == 1 and "no_exports_from_the_future" in not_passing[0], second.output()
    assert "warn" in not_passing[0]
    assert second.completed.returncode == 0, second.output()


def test_a_late_account_with_an_existing_email_never_takes_over_the_customer_id(rebuilt):
    _, _, database, before, _ = rebuilt
    assert query(database, "select store_customer_id, customer_id, assignment_rule from int_identity__store_account_map "
                           "where store_customer_id in ('C9001', 'C9999') order by 1") == [
        ("C9001", "C9001", "new_person"), ("C9999", "C9001", "joined_existing_person_by_email")]
    assert query(database, "select customer_id, email_sha256 from customer_profile where customer_id = 'C9001'") \
        == before["people"]
    assert query(database, "select count(*) from customer_profile where customer_id = 'C9999'") == [(0,)]
    assert query(database, "select audience_name, customer_id, email_sha256 from audience_membership "
                           "where customer_id = 'C9001' order by 1") == before["audiences"]
    (resolution,), = query(database, "select resolution from identity_conflicts "
                                     "where conflict_type = 'shared_email' and source_record_id = 'C9999'")
    assert "never moves" in resolution


def test_full_refresh_is_the_only_way_the_map_is_recomputed(rebuilt):
    workdir, project, database, _, _ = rebuilt
    copy = workdir / "refreshed.duckdb"
    shutil.copy(database, copy)
    refreshed = run_dbt(workdir, "run", "--full-refresh", "--select", "int_identity__store_account_map",
                        database=copy, project=project, target="target-refresh")
    assert refreshed.not_passing() == [], refreshed.output()
    # recomputed from scratch, the earliest-created account anchors the person: the ids move
    assert query(copy, "select store_customer_id, customer_id from int_identity__store_account_map "
                       "where store_customer_id in ('C9001', 'C9003') order by 1") == [("C9001", "C9999"), ("C9003", "C9002")]


def test_people_who_come_to_share_an_email_stay_apart_and_are_surfaced_for_a_merge(rebuilt):
    _, _, database, _, _ = rebuilt
    assert query(database, "select customer_id from int_identity__store_customers where store_customer_id = 'C9003'") \
        == [("C9003",)]
    rows = query(database, "select source_record_id, customer_id, resolution from identity_conflicts "
                           "where conflict_type = 'email_shared_by_several_people' order by 1")
    assert [row[:2] for row in rows] == [("C9002", "C9002"), ("C9003", "C9003")]
    assert all("merge" in row[2] and "--full-refresh" in row[2] for row in rows)


def test_a_record_matched_by_different_rules_across_exports_takes_the_store_id(rebuilt):
    _, _, database, _, _ = rebuilt
    assert query(database, "select customer_id, match_rule from int_identity__source_records "
                           "where source_record_id = 'W-XRULE'") == [("C9003", "store_customer_id")]


def test_an_export_time_in_the_future_is_quarantined_and_stale_data_stays_stale(rebuilt):
    _, _, database, _, _ = rebuilt
    assert query(database, "select source_table, reason, action, exported_at from rejected_inputs "
                           "where source_record_id = 'LA-9080' and field = '_exported_at'") == [
        ("loyalty_accounts", "exported_in_future", "row_quarantined", dt.datetime(2030, 1, 1))]
    fresh, = query(database, "select is_data_fresh from customer_profile where customer_id = 'C9080'")
    assert fresh == (False,)
    assert query(database, "select audience_name from audience_membership where customer_id = 'C9080' "
                           "and audience_name like 'aud_cart%'") == []
