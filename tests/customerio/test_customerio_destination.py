"""CustomerIoDestination against the emulator over real HTTP: what lands, what is rejected, what is retried."""

from __future__ import annotations

import pytest
from cio_helpers import API_KEY, APP_API_KEY, SITE_ID, fast_retries

from pusher.destinations.base import Event, ListRef, Member, PersonUpdate
from pusher.destinations.customerio import CustomerIoDestination
from pusher.destinations.customerio_payloads import event_ulid
from pusher.errors import (ConfigError, DestinationAuthError, DestinationRequestError, DestinationUnavailable,
                           redact)

BATCH = "POST /api/v2/batch"
ADD = "POST /api/v1/segments/{segment_id}/add_customers"
REMOVE = "POST /api/v1/segments/{segment_id}/remove_customers"


def people_state(emulator) -> dict[str, dict]:
    return {key: person["attributes"] for key, person in emulator.state()["people"].items()}


# ----- people ------------------------------------------------------------------------------------------

def test_changed_attributes_land_and_unchanged_ones_stay(emulator, make_destination):
    destination = make_destination(emulator)
    first = destination.upsert_people([
        PersonUpdate("c1", {"email": "a@x.io", "plan": "basic", "points": 10, "created_at": 1_700_000_000},
                     is_new=True),
        PersonUpdate("c2", {"email": "b@x.io", "plan": "pro", "vip": False}, is_new=True),
    ])
    assert sorted(first.accepted) == ["c1", "c2"] and first.rejected == {}
    second = destination.upsert_people([PersonUpdate("c1", {"points": 25}, is_new=False),
                                        PersonUpdate("c2", {"vip": True}, is_new=False)])
    assert sorted(second.accepted) == ["c1", "c2"]
    assert people_state(emulator) == {
        "c1": {"email": "a@x.io", "plan": "basic", "points": 25, "created_at": 1_700_000_000},
        "c2": {"email": "b@x.io", "plan": "pro", "vip": True},
    }
    assert emulator.count(BATCH, "200") == 2   # one v2 batch request per call


def test_none_clears_an_attribute(emulator, make_destination):
    destination = make_destination(emulator)
    destination.upsert_people([PersonUpdate("c1", {"plan": "pro", "city": "Oslo"}, is_new=True)])
    destination.upsert_people([PersonUpdate("c1", {"city": None}, is_new=False)])
    assert people_state(emulator) == {"c1": {"plan": "pro"}}


def test_known_people_are_sent_with_update_so_a_deleted_profile_is_not_recreated(emulator, make_destination):
    destination = make_destination(emulator)
    destination.upsert_people([PersonUpdate("c1", {"plan": "pro"}, is_new=True)])
    emulator.track.delete("/api/v1/customers/c1")           # someone deleted the person in Customer.io
    result = destination.upsert_people([PersonUpdate("c1", {"plan": "max"}, is_new=False),
                                        PersonUpdate("c2", {"plan": "max"}, is_new=True)])
    assert sorted(result.accepted) == ["c1", "c2"]           # the API does not report an `_update` miss
    assert people_state(emulator) == {"c2": {"plan": "max"}}


def test_rows_the_api_would_surely_refuse_are_rejected_locally_and_not_sent(emulator, make_destination):
    destination = make_destination(emulator)
    result = destination.upsert_people([
        PersonUpdate("ok", {"note": "x" * 1000}, is_new=True),
        PersonUpdate("long-value", {"note": "x" * 1001}, is_new=True),
        PersonUpdate("many", {f"a{i}": i for i in range(301)}, is_new=True),
        PersonUpdate("i" * 151, {"a": 1}, is_new=True),
        PersonUpdate("nested", {"prefs": {"sizes": ["x" * 990]}}, is_new=True),
        PersonUpdate("object", {"tags": ["a"], "prefs": {"sizes": ["M"], "bad": float("nan")}}, is_new=True),
    ])
    assert result.accepted == ["ok"]
    assert set(result.rejected) == {"long-value", "many", "i" * 151, "nested", "object"}
    assert "'prefs' is 1004 bytes" in result.rejected["nested"] and "not a finite number" in result.rejected["object"]
    assert "1001 bytes" in result.rejected["long-value"] and "'note'" in result.rejected["long-value"]
    assert "301 attributes" in result.rejected["many"]
    assert "151 bytes" in result.rejected["i" * 151]
    assert list(people_state(emulator)) == ["ok"]


def test_nested_values_land_as_sent(emulator, make_destination):
    value = {"tags": ["a", "b"], "address": {"city": "Oslo"}, "orders": [{"id": 1, "total": 9.5}]}
    result = make_destination(emulator).upsert_people([PersonUpdate("c1", {"profile": value}, is_new=True)])
    assert result.accepted == ["c1"] and people_state(emulator) == {"c1": {"profile": value}}


def test_a_207_rejection_is_recorded_against_the_right_key(emulator, make_destination):
    destination = make_destination(emulator)
    people = [PersonUpdate(f"c{i}", {"n": i}, is_new=True) for i in range(6)]
    people[3] = PersonUpdate("c3", {"created_at": 1_700_000_000_000}, is_new=True)  # ms: the API refuses it
    result = destination.upsert_people(people)
    assert list(result.rejected) == ["c3"] and "created_at" in result.rejected["c3"]
    assert result.accepted == ["c0", "c1", "c2", "c4", "c5"]
    assert emulator.count(BATCH, "207") == 1
    assert sorted(people_state(emulator)) == ["c0", "c1", "c2", "c4", "c5"]


def test_large_updates_are_split_under_the_request_size_limit(emulator, make_destination):
    destination = make_destination(emulator)
    people = [PersonUpdate(f"c{i}", {f"f{j}": "x" * 900 for j in range(30)}, is_new=True) for i in range(40)]
    result = destination.upsert_people(people)    # ~1.1 MB of ops
    assert len(result.accepted) == 40
    assert emulator.count(BATCH, "200") == 3 and emulator.count(BATCH) == 3


def test_a_whole_request_refused_with_400_raises_without_retry(emulator, make_destination):
    destination = make_destination(emulator, max_request_bytes=2_000_000)   # misconfigured past the API limit
    people = [PersonUpdate(f"c{i}", {f"f{j}": "x" * 900 for j in range(30)}, is_new=True) for i in range(20)]
    with pytest.raises(DestinationRequestError, match="HTTP 400"):
        destination.upsert_people(people)
    assert emulator.count(BATCH) == 1


# ----- events ------------------------------------------------------------------------------------------

def test_events_carry_a_deterministic_ulid_and_a_resend_is_deduplicated(emulator, make_destination):
    destination = make_destination(emulator)
    events = [Event("evt-1", "c1", "order_placed", 1_700_000_000, {"total": 42.5}),
              Event("evt-2", "c1", "order_placed", 1_700_000_100, {"total": 10}),
              Event("evt-3", "c2", "review_left", 1_700_000_200)]
    assert sorted(destination.send_events(events).accepted) == ["evt-1", "evt-2", "evt-3"]
    again = make_destination(emulator).send_events(events)    # e.g. the ledger write was lost
    assert sorted(again.accepted) == ["evt-1", "evt-2", "evt-3"]
    state = emulator.state()["people"]
    assert [(e["id"], e["name"], e["timestamp"], e["data"]) for e in state["c1"]["events"]] == [
        (event_ulid("evt-1", 1_700_000_000), "order_placed", 1_700_000_000, {"total": 42.5}),
        (event_ulid("evt-2", 1_700_000_100), "order_placed", 1_700_000_100, {"total": 10}),
    ]
    assert len(state["c2"]["events"]) == 1


def test_bad_events_are_rejected_per_key(emulator, make_destination):
    destination = make_destination(emulator)
    result = destination.send_events([Event("ok", "c1", "viewed", 1_700_000_000),
                                      Event("long-name", "c1", "n" * 101, 1_700_000_000),
                                      Event("no-name", "c1", "  ", 1_700_000_000),
                                      Event("ms", "c1", "viewed", 170_000_000_000)])   # passes the ULID range,
    assert result.accepted == ["ok"]                                                # refused by the API (207)
    assert "101 bytes" in result.rejected["long-name"] and "0 bytes" in result.rejected["no-name"]
    assert "timestamp" in result.rejected["ms"] and not result.rejected["ms"].startswith("not sent")


# ----- segments ------------------------------------------------------------------------------------------------

def test_ensure_list_creates_once_and_a_fresh_instance_finds_it_by_name(emulator, make_destination):
    ref = ListRef("CIO__Cart_Abandon_0-1d__NoPurchase")
    segment_id = make_destination(emulator).ensure_list(ref)
    assert make_destination(emulator).ensure_list(ref) == segment_id      # ledger lost: no duplicate
    assert make_destination(emulator).ensure_list(ListRef(ref.name, segment_id)) == segment_id
    segments = [s for s in emulator.state()["segments"].values() if s["name"] == ref.name]
    assert [(str(s["id"]), s["type"]) for s in segments] == [(segment_id, "manual")]
    assert emulator.count("POST /v1/segments") == 1


def test_add_and_remove_2500_members_in_requests_of_1000_and_read_them_back(emulator, make_destination):
    destination = make_destination(emulator)
    keys = [f"cust-{i:05d}" for i in range(2500)]
    destination.upsert_people([PersonUpdate(key, {"n": 1}, is_new=True) for key in keys])
    ref = ListRef("CIO__Lapsed_90-120d__NoPurchase")
    ref = ListRef(ref.name, destination.ensure_list(ref))

    added = destination.add_members(ref, [Member(key) for key in keys])
    assert added.accepted == keys and added.rejected == {}
    assert emulator.count(ADD, "200") == 3
    assert sorted(destination.list_members(ref)) == keys                     # 3 membership pages

    removed = destination.remove_members(ref, [Member(key) for key in keys[:1200]])
    assert removed.accepted == keys[:1200]
    assert emulator.count(REMOVE, "200") == 2
    assert emulator.state()["segments"][ref.external_id]["members"] == keys[1200:]
    assert list(destination.list_members(ListRef(ref.name))) == keys[1200:]   # found by name as well


def test_a_create_whose_answer_is_lost_does_not_duplicate_the_segment(start_emulator, make_destination):
    emulator = start_emulator(fail_rate=0.5, seed=5)
    destination = make_destination(emulator, retry=fast_retries(12))
    ids = {}
    for i in range(20):          # until a create was applied but its answer dropped
        name = f"CIO__Flaky_{i}"
        ids[name] = destination.ensure_list(ListRef(name))
        if emulator.stats()["POST /v1/segments"].get("dropped_after_apply"):
            break
    assert emulator.stats()["POST /v1/segments"].get("dropped_after_apply")
    segments = emulator.state()["segments"].values()
    assert sorted((s["name"], str(s["id"])) for s in segments if s["name"].startswith("CIO__Flaky")) == sorted(
        ids.items())


def test_look_up_list_creates_a_missing_segment_ahead_and_its_size_costs_no_request(emulator, make_destination):
    """A first sync's look-ahead finds the segment or creates it; the size guard and ensure_list
    then reuse its answer: one lookup, one create, no membership read of a segment made empty."""
    destination = make_destination(emulator)
    ref = ListRef("CIO__Cart_Abandon_0-1d__NoPurchase")
    destination.look_up_list(ref)
    assert destination.list_size(ref) == 0                    # waits for the look-ahead
    assert emulator.count("POST /v1/segments") == 1, "created ahead, before the sync asks for it"
    segment_id = destination.ensure_list(ref)
    assert emulator.state()["segments"][segment_id]["name"] == ref.name
    assert (emulator.count("GET /v1/segments"), emulator.count("POST /v1/segments")) == (1, 1)
    assert not [endpoint for endpoint in emulator.stats() if endpoint.endswith("/membership")]
    keys = [f"cust-{i:03d}" for i in range(3)]
    destination.upsert_people([PersonUpdate(key, {"n": 1}, is_new=True) for key in keys])
    destination.add_members(ListRef(ref.name, segment_id), [Member(key) for key in keys])
    assert destination.list_size(ListRef(ref.name, segment_id)) == 3      # changed since: read again
    # A fresh instance (the next run, its ledger lost) finds it and reads its size.
    other = make_destination(emulator)
    other.look_up_list(ref)
    assert other.list_size(ref) == 3 and other.ensure_list(ref) == segment_id
    assert emulator.count("POST /v1/segments") == 1


def test_a_look_ahead_create_whose_answer_is_lost_does_not_duplicate_the_segment(start_emulator, make_destination):
    emulator = start_emulator(fail_rate=0.5, seed=7)
    destination = make_destination(emulator, retry=fast_retries(3))
    ids = {}
    for i in range(30):          # until a create was applied but its answer dropped
        name = f"CIO__Flaky_{i}"
        destination.look_up_list(ListRef(name))
        for attempt in range(10):     # the look-ahead may have given up: the sync's own call reports, rerun
            try:
                ids[name] = destination.ensure_list(ListRef(name))
                break
            except DestinationUnavailable:
                continue
        if emulator.stats()["POST /v1/segments"].get("dropped_after_apply"):
            break
    assert emulator.stats()["POST /v1/segments"].get("dropped_after_apply")
    segments = emulator.state()["segments"].values()
    assert sorted((s["name"], str(s["id"])) for s in segments if s["name"].startswith("CIO__Flaky")) == sorted(
        ids.items())


def test_list_members_of_a_list_never_created_is_empty(emulator, make_destination):
    assert list(make_destination(emulator).list_members(ListRef("CIO__Nothing_Yet"))) == []


def test_a_segment_deleted_in_customerio_gives_a_clear_error(emulator, make_destination):
    destination = make_destination(emulator)
    with pytest.raises(DestinationRequestError, match="no segment 999.*Run `pusher reset SYNC`"):
        destination.add_members(ListRef("CIO__Gone", "999"), [Member("c1")])


# ----- failures ---------------------------------------------------------------------------------------------

def test_wrong_track_key_raises_auth_error_once_without_the_secret(emulator, make_destination):
    secret = "wrong-track-key-4f9d2c"
    destination = make_destination(emulator, api_key=secret)
    with pytest.raises(DestinationAuthError) as caught:
        destination.upsert_people([PersonUpdate("c1", {"a": 1}, is_new=True)])
    assert secret not in str(caught.value) and "CUSTOMERIO_API_KEY" in str(caught.value)
    assert emulator.stats() == {BATCH: {"401": 1}}                       # not retried


def test_wrong_app_key_raises_auth_error_naming_the_variable(emulator, make_destination):
    secret = "wrong-app-key-77aa01"
    destination = make_destination(emulator, app_api_key=secret)
    with pytest.raises(DestinationAuthError, match="CUSTOMERIO_APP_API_KEY") as caught:
        destination.ensure_list(ListRef("CIO__X"))
    assert secret not in str(caught.value)
    assert emulator.count("GET /v1/segments") == 1


def test_segments_need_the_app_api_key(emulator, make_destination):
    with pytest.raises(ConfigError, match="CUSTOMERIO_APP_API_KEY is not set"):
        make_destination(emulator, app_api_key=None).ensure_list(ListRef("CIO__X"))


def test_unreachable_destination_raises_unavailable_after_retries():
    destination = CustomerIoDestination(SITE_ID, API_KEY, APP_API_KEY, track_url="http://127.0.0.1:9",
                                        app_url="http://127.0.0.1:9", retry=fast_retries(3))
    try:
        with pytest.raises(DestinationUnavailable, match="after 3 attempts"):
            destination.send_events([Event("e1", "c1", "viewed", 1_700_000_000)])
    finally:
        destination.close()


def test_converges_through_failures_and_rate_limits(start_emulator, make_destination):
    emulator = start_emulator(fail_rate=0.2, rate_limit=60, seed=11)
    destination = make_destination(emulator, retry=fast_retries(10), requests_per_second=200,
                                   max_request_bytes=1_000)     # many small batches: more faults to live through
    keys = [f"c{i:03d}" for i in range(300)]
    people = [PersonUpdate(key, {"plan": "pro", "n": i}, is_new=True) for i, key in enumerate(keys)]
    events = [Event(f"e-{key}", key, "signed_up", 1_700_000_000 + i) for i, key in enumerate(keys)]
    ref = ListRef("CIO__Converge")

    def until_done(call):          # what the sync engine does across runs: resend what was not acknowledged
        for _ in range(5):
            try:
                return call()
            except DestinationUnavailable:
                continue
        raise AssertionError("did not converge")

    assert len(until_done(lambda: destination.upsert_people(people)).accepted) == 300
    assert len(until_done(lambda: destination.send_events(events)).accepted) == 300
    ref = ListRef(ref.name, until_done(lambda: destination.ensure_list(ref)))
    until_done(lambda: destination.add_members(ref, [Member(key) for key in keys]))
    until_done(lambda: destination.remove_members(ref, [Member(key) for key in keys[:100]]))

    state = emulator.state()
    assert {key: person["attributes"] for key, person in state["people"].items()} == {
        key: {"plan": "pro", "n": i} for i, key in enumerate(keys)}
    assert all(len(state["people"][key]["events"]) == 1 for key in keys)   # drops after apply: no duplicates
    assert state["segments"][ref.external_id]["members"] == keys[100:]
    assert len([s for s in state["segments"].values() if s["name"] == ref.name]) == 1
    stats = emulator.stats()
    fault_statuses = ("429", "500", "503", "dropped", "dropped_after_apply")
    faults = sum(counts.get(status, 0) for counts in stats.values() for status in fault_statuses)
    assert faults >= 15 and any("dropped_after_apply" in counts for counts in stats.values()), stats


# ----- settings --------------------------------------------------------------------------------------------

ENV = {"CUSTOMERIO_SITE_ID": "site-1", "CUSTOMERIO_API_KEY": "track-key-123", "CUSTOMERIO_APP_API_KEY": "app-key-456"}


@pytest.mark.parametrize("missing", ["CUSTOMERIO_SITE_ID", "CUSTOMERIO_API_KEY"])
def test_from_env_names_a_missing_variable(missing):
    with pytest.raises(ConfigError, match=missing):
        CustomerIoDestination.from_env({k: v for k, v in ENV.items() if k != missing})


def test_from_env_region_urls_overrides_and_limits():
    us = CustomerIoDestination.from_env(ENV)
    eu = CustomerIoDestination.from_env({**ENV, "CUSTOMERIO_REGION": "EU", "CUSTOMERIO_RATE_LIMIT": "40",
                                         "CUSTOMERIO_MAX_ATTEMPTS": "3", "CUSTOMERIO_RETRY_BASE_DELAY": "0.1"})
    local = CustomerIoDestination.from_env({**ENV, "CUSTOMERIO_TRACK_URL": "http://127.0.0.1:8701/",
                                            "CUSTOMERIO_APP_URL": "http://127.0.0.1:8702"})
    try:
        assert (us.track_url, us.app_url, us.requests_per_second) == (
            "https://track.customer.io", "https://api.customer.io", 100.0)   # the documented 100/s
        assert (eu.track_url, eu.app_url, eu.requests_per_second) == (
            "https://track-eu.customer.io", "https://api-eu.customer.io", 40.0)
        assert (eu.retry.max_attempts, eu.retry.base_delay) == (3, 0.1)
        assert (local.track_url, local.app_url) == ("http://127.0.0.1:8701", "http://127.0.0.1:8702")
        assert redact("keys track-key-123 and app-key-456") == "keys *** and ***"
    finally:
        for destination in (us, eu, local):
            destination.close()


@pytest.mark.parametrize("name, value", [("CUSTOMERIO_REGION", "apac"), ("CUSTOMERIO_RATE_LIMIT", "fast"),
                                         ("CUSTOMERIO_RATE_LIMIT", "0"), ("CUSTOMERIO_MAX_ATTEMPTS", "0")])
def test_from_env_refuses_bad_settings(name, value):
    with pytest.raises(ConfigError, match=name):
        CustomerIoDestination.from_env({**ENV, name: value})


def test_from_env_works_against_the_emulator(emulator):
    destination = CustomerIoDestination.from_env({
        "CUSTOMERIO_SITE_ID": SITE_ID, "CUSTOMERIO_API_KEY": API_KEY, "CUSTOMERIO_APP_API_KEY": APP_API_KEY,
        "CUSTOMERIO_TRACK_URL": emulator.url, "CUSTOMERIO_APP_URL": emulator.url})
    try:
        assert destination.upsert_people([PersonUpdate("c1", {"a": 1}, is_new=True)]).accepted == ["c1"]
        assert destination.ensure_list(ListRef("CIO__Env")).isdigit()
    finally:
        destination.close()
    assert people_state(emulator) == {"c1": {"a": 1}}


def test_class_attributes_match_the_interface():
    assert (CustomerIoDestination.kind, CustomerIoDestination.list_prefix,
            CustomerIoDestination.max_members_per_request, CustomerIoDestination.required_identifier) == (
        "customerio", "CIO", 1000, "key")
    assert CustomerIoDestination.supports_people and CustomerIoDestination.supports_events
    assert not CustomerIoDestination.supports_replace


# ----- the per-person attribute cap -------------------------------------------------------------------

def test_a_person_who_would_hold_over_300_attributes_is_refused_and_the_batch_goes_on(emulator, make_destination):
    destination = make_destination(emulator)
    held = frozenset(f"a{i}" for i in range(250))
    result = destination.upsert_people([
        PersonUpdate("over", {f"b{i}": i for i in range(51)}, is_new=False, held=held),        # 301
        PersonUpdate("at-cap", {f"b{i}": i for i in range(50)}, is_new=True, held=held),       # 300
        PersonUpdate("clears", {"a0": None, **{f"b{i}": i for i in range(51)}}, is_new=True, held=held),  # 300
    ])
    assert sorted(result.accepted) == ["at-cap", "clears"]
    reason = result.rejected["over"]
    assert "person over would hold 301 attributes" in reason and "300 per person" in reason
    assert "Remove attribute columns" in reason
    assert emulator.count(BATCH) == 1 and "over" not in people_state(emulator)


# ----- identifying people by phone --------------------------------------------------------------------

def test_people_identified_by_phone_carry_our_id_and_bad_phones_are_named_by_customer_id(start_emulator,
                                                                                       make_destination):
    emulator = start_emulator(env={"CUSTOMERIO_EMULATOR_PHONE_IDENTIFIER": "true"})
    destination = make_destination(emulator, identify_by="phone")
    first = destination.upsert_people([
        PersonUpdate("c1", {"plan": "pro", "phone": "+14155552671"}, is_new=True, phone="+14155552671"),
        PersonUpdate("c2", {"plan": "pro"}, is_new=True, phone=None),
        PersonUpdate("c3", {"plan": "pro", "phone": "555-0100"}, is_new=True, phone="555-0100"),
    ])
    assert first.accepted == ["c1"]
    assert "person c2 has no phone" in first.rejected["c2"]
    assert "person c3: phone is not in E.164" in first.rejected["c3"] and "555" not in first.rejected["c3"]
    second = destination.upsert_people([
        PersonUpdate("c1", {"plan": "max"}, is_new=False, phone="+14155552671"),
        PersonUpdate("c1x", {"phone": "+14155550000"}, is_new=False, phone="+14155550000"),
    ])
    assert second.accepted == ["c1"] and "phone changed" in second.rejected["c1x"]
    assert people_state(emulator) == {"c1": {"phone": "+14155552671", "plan": "max"}}
    # Events and segments go by id: the profile made by phone has our customer_id as its id.
    assert destination.send_events([Event("e1", "c1", "bought", 1_700_000_000)]).accepted == ["e1"]
    assert [e["name"] for e in emulator.state()["people"]["c1"]["events"]] == ["bought"]


def test_the_identifier_setting_is_checked(emulator):
    from pusher.errors import ConfigError as Refused

    with pytest.raises(Refused, match="CUSTOMERIO_IDENTIFIER is 'email'"):
        CustomerIoDestination.from_env({"CUSTOMERIO_SITE_ID": SITE_ID, "CUSTOMERIO_API_KEY": API_KEY,
                                        "CUSTOMERIO_IDENTIFIER": "email"})
