"""Inputs are validated in SQL: the demo world's messy and invalid inputs (C92xx in
seeds/_seeds.yml) are cleaned, nulled or quarantined as the rules say, each refusal is listed in
rejected_inputs with its reason, and nothing invalid reaches an audience."""

from __future__ import annotations

import hashlib
from datetime import datetime

import duckdb
import pytest


@pytest.fixture(scope="module")
def con(demo_warehouse):
    with duckdb.connect(str(demo_warehouse.database), read_only=True) as connection:
        yield connection


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def staged(con, customer_id: str) -> tuple:
    return con.execute("select email, phone_e164 from stg_store__customers where store_customer_id = ?",
                       [customer_id]).fetchone()


def vip_member(con, customer_id: str) -> tuple | None:
    return con.execute("select email_sha256, phone_sha256 from aud_vip_high_ltv where customer_id = ?",
                       [customer_id]).fetchone()


def rejections(con, record_id: str) -> set[tuple]:
    rows = con.execute("select source_table, field, reason, action from rejected_inputs where source_record_id = ?",
                       [record_id]).fetchall()
    return set(rows)


def test_whitespace_and_zero_width_characters_are_removed_and_trunk_prefix_and_extension_dropped(con):
    assert staged(con, "C9201") == ("zoe.zero@example.com", "+442079460201")
    assert vip_member(con, "C9201") == (sha256("zoe.zero@example.com"), sha256("+442079460201"))
    assert rejections(con, "C9201") == set()


def test_fullwidth_at_sign_is_folded_and_x_extension_cut(con):
    assert staged(con, "C9202") == ("finn@example.com", "+14155550202")
    assert vip_member(con, "C9202") == (sha256("finn@example.com"), sha256("+14155550202"))


@pytest.mark.parametrize("customer_id, reason", [
    ("C9203", "email_without_at_sign"),
    ("C9204", "email_with_several_at_signs"),
    ("C9205", "email_domain_without_dot"),
])
def test_invalid_emails_are_nulled_listed_and_never_hashed(con, customer_id, reason):
    assert staged(con, customer_id)[0] is None
    assert rejections(con, customer_id) == {("customers", "email", reason, "value_nulled")}
    email_sha256, _ = vip_member(con, customer_id)
    assert email_sha256 is None


def test_an_invalid_email_still_reaches_the_person_by_phone_with_the_hash_extension_cut(con):
    assert vip_member(con, "C9203") == (None, sha256("+12125550203"))


def test_a_negative_order_is_quarantined_and_never_makes_a_negative_ltv_or_a_winback(con):
    assert con.execute("select count(*) from stg_store__orders where order_id = 'O-NEG-9206'").fetchone() == (0,)
    assert rejections(con, "O-NEG-9206") == {("orders", "total_price", "negative_amount", "row_quarantined")}
    raw_value, = con.execute("select raw_value from rejected_inputs where source_record_id = 'O-NEG-9206'").fetchone()
    assert float(raw_value) == -500.0
    order_count, lifetime_value, winback = con.execute(
        "select order_count, lifetime_value, is_winback_eligible from customer_profile where customer_id = 'C9206'"
    ).fetchone()
    assert (order_count, lifetime_value, winback) == (0, 0, False)
    audiences = con.execute("select audience_name from audience_membership where customer_id = 'C9206'").fetchall()
    assert audiences == []


def test_every_rejection_in_the_demo_world_is_one_of_the_named_cases(con):
    record_ids = {row[0] for row in con.execute("select source_record_id from rejected_inputs").fetchall()}
    assert record_ids == {"C9203", "C9204", "C9205", "O-NEG-9206"}
    assert con.execute("select min(lifetime_value) from customer_profile").fetchone()[0] >= 0


def test_a_time_with_an_explicit_offset_keeps_it(con):
    # SE-TZ-OFFSET: '2026-11-10T08:00:00+05:00' in a New York source, exported '...T09:00:00-05:00'
    assert con.execute("select changed_at, exported_at from stg_subscriptions__subscription_events "
                       "where subscription_event_id = 'SE-TZ-OFFSET'").fetchone() == (
        datetime(2026, 11, 10, 3, 0), datetime(2026, 11, 10, 14, 0))
