"""Pure payload logic: ULIDs, ops, local limit checks, request packing, error bodies."""

from __future__ import annotations

import json

import pytest

from pusher.destinations import customerio_payloads as payloads
from pusher.destinations.base import Event, PersonUpdate
from pusher.destinations.customerio_payloads import (MAX_OP_BYTES, batch_body, encode_op, error_message, event_op,
                                                     event_problem, event_ulid, identify_op, pack_batches,
                                                     partial_rejections, person_problem)

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def decode(ulid: str) -> int:
    number = 0
    for char in ulid:
        number = number * 32 + CROCKFORD.index(char)
    return number


def test_event_ulid_is_deterministic_time_ordered_and_keyed():
    ulid = event_ulid("evt-1", 1_700_000_000)
    assert ulid == event_ulid("evt-1", 1_700_000_000)
    assert len(ulid) == 26 and set(ulid) <= set(CROCKFORD) and ulid[0] in "01234567"
    assert decode(ulid) >> 80 == 1_700_000_000_000                   # first 48 bits: milliseconds
    assert event_ulid("evt-2", 1_700_000_000) != ulid                  # other key, other randomness
    assert event_ulid("evt-2", 1_700_000_000)[:10] == ulid[:10]        # same time prefix
    assert event_ulid("a", 1_700_000_000) < event_ulid("a", 1_700_000_001)
    with pytest.raises(ValueError):
        event_ulid("x", -1)


def test_identify_op_adds_update_only_for_known_people_and_keeps_nulls():
    new = identify_op(PersonUpdate("c1", {"plan": "pro"}, is_new=True))
    known = identify_op(PersonUpdate("c1", {"city": None}, is_new=False))
    assert new == {"type": "person", "identifiers": {"id": "c1"}, "action": "identify", "attributes": {"plan": "pro"}}
    assert known["attributes"] == {"city": None, "_update": True}
    assert b'"city":null' in encode_op(known)[0]


def test_event_op_shape():
    op = event_op(Event("k", "c1", "bought", 1_700_000_000, {"total": 3}))
    assert op == {"type": "person", "identifiers": {"id": "c1"}, "action": "event",
                  "id": event_ulid("k", 1_700_000_000), "name": "bought", "timestamp": 1_700_000_000,
                  "attributes": {"total": 3}}


@pytest.mark.parametrize("update, expected", [
    (PersonUpdate("c", {"a": "x" * 1000, "b": 1.5, "c": True, "d": None}, True), None),
    (PersonUpdate("c", {"a": "ü" * 501}, True), "1002 bytes"),
    (PersonUpdate("c", {"n" * 151: 1}, True), "151 bytes"),
    (PersonUpdate("c", {f"a{i}": i for i in range(301)}, True), "301 attributes"),
    (PersonUpdate("c", {f"a{i}": i for i in range(300)}, False), None),   # _update does not count
    (PersonUpdate("", {"a": 1}, True), "customer id is empty"),
    (PersonUpdate("c" * 151, {"a": 1}, True), "151 bytes"),
    (PersonUpdate("c", {"a": float("nan")}, True), "not a finite number"),
    (PersonUpdate("c", {"a": {"nested": [1, {"b": None}]}}, True), None),
    (PersonUpdate("c", {"a": {"nested": [1.0, float("inf")]}}, True), "not a finite number"),
    (PersonUpdate("c", {"a": {"when": object()}}, True), "object, array or null"),
])
def test_person_problem(update, expected):
    problem = person_problem(update)
    assert problem is None if expected is None else expected in problem


@pytest.mark.parametrize("event, expected", [
    (Event("k", "c", "viewed", 1_700_000_000, {"x": "y"}), None),
    (Event("k", "c", "n" * 101, 1_700_000_000), "101 bytes"),
    (Event("k", "c", " ", 1_700_000_000), "0 bytes"),
    (Event("k", "c", "viewed", 1_700_000_000, {"blob": "x" * 100_000}), "event data is 100011 bytes"),
    (Event("k", "", "viewed", 1_700_000_000), "customer id is empty"),
    (Event("k", "c", "viewed", -5), "not a plausible Unix time"),
])
def test_event_problem(event, expected):
    problem = event_problem(event)
    assert problem is None if expected is None else expected in problem


def test_encode_op_refuses_an_op_over_the_op_limit():
    data, problem = encode_op({"attributes": {"a": "x" * MAX_OP_BYTES}})
    assert data is None and "a Customer.io batch op may be at most" in problem


def test_pack_batches_keeps_order_and_every_body_under_the_limit():
    encoded = [(f"k{i}", json.dumps({"i": i, "pad": "x" * (i % 7 * 13)}).encode()) for i in range(200)]
    batches = pack_batches(encoded, max_request_bytes=600)
    assert [key for batch in batches for key, _ in batch] == [f"k{i}" for i in range(200)]
    for batch in batches:
        body = batch_body([data for _, data in batch])
        assert len(body) <= 600
        assert [op["i"] for op in json.loads(body)["batch"]] == [int(key[1:]) for key, _ in batch]
    # A batch could not have taken its successor's first op.
    for batch, following in zip(batches, batches[1:]):
        assert len(batch_body([d for _, d in batch] + [following[0][1]])) > 600
    assert pack_batches([], 600) == []


def test_error_message_reads_both_meta_shapes_and_v2_errors():
    assert error_message({"meta": {"error": "bad id"}}) == "bad id"
    assert error_message({"meta": {"errors": ["a", "b"]}}) == "a; b"
    assert error_message({"errors": [{"reason": "invalid", "field": "name", "message": "too long"}]}) == (
        "invalid: too long (field name)")
    assert error_message("Internal Server Error") == "Internal Server Error"
    assert error_message({}) == "{}"


def test_partial_rejections_map_batch_index_and_skip_garbage():
    body = {"errors": [{"batch_index": 2, "reason": "invalid", "field": "attributes", "message": "too big"},
                       {"batch_index": 2, "reason": "invalid", "message": "also this"},
                       {"batch_index": 9, "reason": "out of range"}, {"batch_index": True}, "junk", {}]}
    assert partial_rejections(body, ["a", "b", "c"]) == {
        2: "invalid: too big (field attributes); invalid: also this"}
    assert partial_rejections({}, ["a"]) == {} and partial_rejections(None, ["a"]) == {}


def test_attributes_after_counts_held_plus_new_minus_cleared():
    from pusher.destinations.customerio_payloads import attributes_after

    held = {"email", "plan", "city", "id"}
    assert attributes_after(held, {"plan": "pro", "tier": "gold", "city": None, "_update": True}) == {
        "email", "plan", "tier"}
    assert attributes_after((), {"id": "c1", "a": None}) == set()


def test_identify_op_carries_the_row_state_time():
    from pusher.diff import state_time

    current = {"plan": "pro", "plan_updated_at": 1_700_000_100, "tier_updated_at": 1_700_000_300, "n": 5}
    acknowledged = {"plan_updated_at": 1_700_000_100, "tier_updated_at": 1_700_000_400}
    assert state_time(current) == 1_700_000_300
    assert state_time(current, acknowledged) == 1_700_000_400      # never back in time
    assert state_time({"plan": "pro", "is_updated_at": True}, None) is None
    assert state_time({"updated_at": 1_700_000_500}) == 1_700_000_500
    op = identify_op(PersonUpdate("c1", {"plan": "pro"}, is_new=False, timestamp=1_700_000_300))
    assert op["timestamp"] == 1_700_000_300
    assert "timestamp" not in identify_op(PersonUpdate("c1", {"plan": "pro"}, is_new=True))


def test_a_new_person_identified_by_phone_counts_its_id_against_the_per_call_limit():
    from pusher.destinations.customerio_payloads import phone_problem

    full = {f"a{i}": i for i in range(300)}
    assert "plus its id" in phone_problem(PersonUpdate("c1", full, is_new=True, phone="+4791234567"))
    assert phone_problem(PersonUpdate("c1", full, is_new=False, phone="+4791234567")) is None


def test_objects_are_kept_under_300_attributes_across_calls_and_their_relationship_is_split_off():
    from pusher.destinations.base import ObjectUpdate
    from pusher.destinations.customerio_payloads import object_ops, object_problem

    previous = {"customer_id": "c1", **{f"a{i}": i for i in range(250)}, "gone": None}
    over = ObjectUpdate.of_change("1", "o1", {f"b{i}": i for i in range(51)}, previous, is_new=False)
    assert over.held == frozenset(f"a{i}" for i in range(250))
    assert "object o1 would hold 301 attributes" in object_problem(over)
    fits = ObjectUpdate.of_change("1", "o1", {"a0": None, **{f"b{i}": i for i in range(51)}}, previous, False)
    assert object_problem(fits) is None
    moved = ObjectUpdate.of_change("1", "o1", {"customer_id": "c2", "status": "paid"}, previous, is_new=False)
    assert [op["action"] for op in object_ops(moved)] == ["identify", "delete_relationships"]
    assert object_ops(moved)[0]["cio_relationships"] == [{"identifiers": {"id": "c2"}}]
    assert object_ops(moved)[0]["attributes"] == {"status": "paid"}
    assert object_ops(moved)[1]["cio_relationships"] == [{"identifiers": {"id": "c1"}}]


@pytest.mark.parametrize("odd", [None, 5, "", "   ", "x" * 151, "é" * 76, "😀" * 38, "x" * 38, "é" * 75, "😀" * 37])
def test_ids_checked_by_the_batch_are_refused_exactly_as_one_by_one(odd):
    """A batch's fast check in C never lets through an id the per-id check refuses, nor the reverse."""
    ids = [f"c{i:09d}" for i in range(5)] + [odd] + ["y" * 37]
    expected = {index: problem for index, value in enumerate(ids)
                if (problem := payloads.id_problem("customer id", value))}
    assert payloads.id_problems("customer id", ids) == expected
    assert bool(expected) == (odd in (None, 5, "", "   ", "x" * 151, "é" * 76, "😀" * 38))
    assert payloads.id_problems("customer id", ids[:5]) == {} and payloads.id_problems("customer id", []) == {}
