"""The emulator enforces each rule of contracts/customerio.md, refusing bad payloads as the API does."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from pusher.emulators.customerio import create_app
from pusher.emulators.options import EmulatorOptions
from pusher.emulators.server import running

ULID_A = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
ULID_B = "01ARZ3NDEKTSV4RRFFQ69G5FAW"


def identify_op(person_id: str, **attributes) -> dict:
    return {"type": "person", "identifiers": {"id": person_id}, "action": "identify", "attributes": attributes}


def error_text(response: httpx.Response) -> str:
    meta = response.json()["meta"]
    return meta.get("error") or "; ".join(meta["errors"])


# ----- auth --------------------------------------------------------------------------------------------

def test_track_api_refuses_missing_and_wrong_basic_auth(emulator):
    no_auth = emulator.anonymous.put("/api/v1/customers/u1", json={"a": 1})
    wrong = emulator.anonymous.put("/api/v1/customers/u1", json={"a": 1}, auth=("demo-site", "nope"))
    bearer = emulator.anonymous.put("/api/v1/customers/u1", json={"a": 1},
                       headers={"Authorization": "Bearer demo-app-key"})
    assert [no_auth.status_code, wrong.status_code, bearer.status_code] == [401, 401, 401]
    assert error_text(wrong) == "Unauthorized request"
    assert emulator.state()["people"] == {}
    assert emulator.track.put("/api/v1/customers/u1", json={"a": 1}).status_code == 200


def test_app_api_wants_its_bearer_key_not_track_credentials(emulator):
    assert emulator.anonymous.get("/v1/segments").status_code == 401
    assert emulator.anonymous.get("/v1/segments", auth=("demo-site", "demo-key")).status_code == 401
    assert emulator.anonymous.get("/v1/segments", headers={"Authorization": "Bearer x"}).status_code == 401
    assert emulator.app.get("/v1/segments").status_code == 200


def test_credentials_come_from_the_environment():
    app = create_app(EmulatorOptions(), env={"CUSTOMERIO_EMULATOR_SITE_ID": "s1", "CUSTOMERIO_EMULATOR_API_KEY": "k1",
                                             "CUSTOMERIO_EMULATOR_APP_API_KEY": "a1"})
    with running(app) as url:
        assert httpx.put(f"{url}/api/v1/customers/u", json={}, auth=("demo-site", "demo-key")).status_code == 401
        assert httpx.put(f"{url}/api/v1/customers/u", json={}, auth=("s1", "k1")).status_code == 200
        assert httpx.get(f"{url}/v1/segments", headers={"Authorization": "Bearer a1"}).status_code == 200


# ----- limits -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("body, expected", [
    ({"note": "x" * 1001}, "1001 bytes"),
    ({"note": "é" * 501}, "1002 bytes"),                      # bytes, not characters
    ({"n" * 151: 1}, "151 bytes"),
    ({f"a{i}": i for i in range(301)}, "more than 300 attributes in one request"),
    ({"prefs": {"sizes": ["x" * 990]}}, "value for attribute 'prefs' cannot be longer than 1000 bytes"),
    ({"created_at": 1_700_000_000_000}, "whole seconds"),     # milliseconds by mistake
    ({"_update": "yes"}, "_update must be a boolean"),
])
def test_identify_refuses_what_breaks_a_limit(emulator, body, expected):
    response = emulator.track.put("/api/v1/customers/u1", json=body)
    assert response.status_code == 400
    assert expected in error_text(response)
    assert emulator.state()["people"] == {}


def test_limits_are_inclusive(emulator):
    body = {"note": "x" * 1000, "n" * 150: 1, **{f"a{i}": i for i in range(298)}}
    assert emulator.track.put("/api/v1/customers/" + "i" * 150, json=body).status_code == 200
    assert len(emulator.state()["people"]["i" * 150]["attributes"]) == 300


def test_nested_values_are_accepted_up_to_1000_bytes_of_json(emulator):
    nested = {"tags": ["a", "b"], "address": {"city": "Oslo", "zip": 150}, "orders": [{"id": 1, "total": 9.5}]}
    assert emulator.track.put("/api/v1/customers/u1", json=nested).status_code == 200
    at_limit = {"blob": ["x" * 996]}                                   # ["x…x"] is exactly 1000 bytes
    batch = emulator.track.post("/api/v2/batch", json={"batch": [identify_op("u2", **at_limit),
                                                                 identify_op("u3", blob=["x" * 997])]})
    assert batch.status_code == 207 and [e["batch_index"] for e in batch.json()["errors"]] == [1]
    people = emulator.state()["people"]
    assert people["u1"]["attributes"] == nested and people["u2"]["attributes"] == at_limit and "u3" not in people


def test_the_300_attribute_cap_holds_per_person_across_calls(emulator):
    assert emulator.track.put("/api/v1/customers/u1", json={f"a{i}": i for i in range(200)}).status_code == 200
    over = emulator.track.put("/api/v1/customers/u1", json={f"b{i}": i for i in range(101)})
    assert over.status_code == 400
    assert "cannot hold more than 300 attributes per person" in error_text(over)
    assert len(emulator.state()["people"]["u1"]["attributes"]) == 200        # refused whole
    batch = emulator.track.post("/api/v2/batch", json={"batch": [
        identify_op("u1", **{f"b{i}": i for i in range(101)}),
        identify_op("u2", **{f"b{i}": i for i in range(101)}),
    ]})
    assert batch.status_code == 207
    assert [(e["batch_index"], e["field"]) for e in batch.json()["errors"]] == [(0, "attributes")]
    assert "per person" in batch.json()["errors"][0]["message"]
    # Clearing makes room: 200 held - 1 cleared + 101 new = 300, inside the cap.
    fits = {"a0": None, **{f"b{i}": i for i in range(101)}}
    assert emulator.track.put("/api/v1/customers/u1", json=fits).status_code == 200
    assert len(emulator.state()["people"]["u1"]["attributes"]) == 300
    assert emulator.track.put("/api/v1/customers/u1", json={"a1": 5}).status_code == 200   # an update, not a new one
    entity = emulator.track.post("/api/v2/entity", json=identify_op("u1", extra=1))
    assert entity.status_code == 400 and "per person" in entity.json()["errors"][0]["message"]


def test_identifier_over_150_bytes_is_refused(emulator):
    response = emulator.track.put("/api/v1/customers/" + "i" * 151, json={"a": 1})
    assert response.status_code == 400 and "151 bytes" in error_text(response)
    batch = emulator.track.post("/api/v2/batch", json={"batch": [identify_op("i" * 151, a=1)]})
    assert batch.status_code == 207 and batch.json()["errors"][0]["field"] == "identifiers"


@pytest.mark.parametrize("event, expected", [
    ({"name": "n" * 101}, "101 bytes"),
    ({"name": "   "}, "event name is required"),
    ({"data": {"x": 1}}, "event name is required"),
    ({"name": "ok", "data": {"blob": "x" * 100_000}}, "event data is 100011 bytes"),
    ({"name": "ok", "id": "not-a-ulid"}, "must be a ULID"),
    ({"name": "ok", "timestamp": 1_700_000_000_000}, "whole seconds"),
])
def test_event_refuses_what_breaks_a_limit(emulator, event, expected):
    response = emulator.track.post("/api/v1/customers/u1/events", json=event)
    assert response.status_code == 400
    assert expected in error_text(response)
    assert emulator.state()["people"] == {}


def test_malformed_json_is_a_400(emulator):
    response = emulator.track.put("/api/v1/customers/u1", content=b"{nope",
                                  headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and "not valid JSON" in error_text(response)


# ----- identify semantics ---------------------------------------------------------------------------------

def test_update_flag_never_creates_but_updates_an_existing_profile(emulator):
    assert emulator.track.put("/api/v1/customers/ghost", json={"plan": "pro", "_update": True}).status_code == 200
    assert emulator.state()["people"] == {}
    emulator.track.put("/api/v1/customers/u1", json={"plan": "basic", "city": "Oslo"})
    emulator.track.put("/api/v1/customers/u1", json={"plan": "pro", "_update": True})
    assert emulator.state()["people"]["u1"]["attributes"] == {"plan": "pro", "city": "Oslo"}


def test_null_removes_an_attribute_and_other_attributes_stay(emulator):
    emulator.track.put("/api/v1/customers/u1", json={"plan": "pro", "city": "Oslo"})
    emulator.track.put("/api/v1/customers/u1", json={"city": None})
    assert emulator.state()["people"]["u1"]["attributes"] == {"plan": "pro"}


def test_identifiers_are_url_decoded_and_email_matches_case_insensitively(emulator):
    assert emulator.track.put("/api/v1/customers/a%2Fb", json={"email": "Ann@Example.com"}).status_code == 200
    emulator.track.put("/api/v1/customers/ann%40example.com", json={"vip": True})
    person = emulator.state()["people"]["a/b"]
    assert person["attributes"] == {"email": "Ann@Example.com", "vip": True}
    emulator.track.put(f"/api/v1/customers/cio_{person['cio_id']}", json={"tier": 2})
    assert emulator.state()["people"]["a/b"]["attributes"]["tier"] == 2


def test_delete_removes_the_person_and_their_memberships(emulator):
    segment = emulator.app.post("/v1/segments", json={"segment": {"name": "S"}}).json()["segment"]
    emulator.track.put("/api/v1/customers/u1", json={"a": 1})
    emulator.track.post(f"/api/v1/segments/{segment['id']}/add_customers", json={"ids": ["u1"]})
    assert emulator.track.delete("/api/v1/customers/u1").status_code == 200
    state = emulator.state()
    assert state["people"] == {} and state["segments"][str(segment["id"])]["members"] == []


# ----- events -------------------------------------------------------------------------------------------

def test_event_id_is_the_dedupe_key(emulator):
    for event in ({"name": "bought", "id": ULID_A, "timestamp": 1_700_000_000},
                  {"name": "bought", "id": ULID_A, "timestamp": 1_700_000_000},
                  {"name": "bought", "id": ULID_A.lower(), "timestamp": 1_700_000_000},
                  {"name": "bought", "id": ULID_B},
                  {"name": "viewed"}, {"name": "viewed"}):
        assert emulator.track.post("/api/v1/customers/u1/events", json=event).status_code == 200
    events = emulator.state()["people"]["u1"]["events"]
    assert [(e["name"], e["id"]) for e in events] == [("bought", ULID_A), ("bought", ULID_B),
                                                     ("viewed", None), ("viewed", None)]


# ----- manual segment membership ---------------------------------------------------------------------------

@pytest.fixture
def segment_with_people(emulator):
    segment = emulator.app.post("/v1/segments", json={"segment": {"name": "CIO__Test"}}).json()["segment"]
    emulator.track.post("/api/v2/batch", json={"batch": [identify_op(f"u{i}", email=f"u{i}@x.io") for i in range(5)]})
    return segment["id"]


@pytest.mark.parametrize("count", [0, 1001])
def test_segment_calls_take_1_to_1000_ids(emulator, segment_with_people, count):
    response = emulator.track.post(f"/api/v1/segments/{segment_with_people}/add_customers",
                                   json={"ids": [f"u{i}" for i in range(count)]})
    assert response.status_code == 400 and "1 to 1000" in error_text(response)


def test_segment_call_with_1000_ids_ignores_unknown_ones(emulator, segment_with_people):
    ids = [f"u{i}" for i in range(1000)]
    assert emulator.track.post(f"/api/v1/segments/{segment_with_people}/add_customers",
                               json={"ids": ids}).status_code == 200
    assert emulator.state()["segments"][str(segment_with_people)]["members"] == [f"u{i}" for i in range(5)]


def test_id_type_must_be_valid_and_selects_the_identifier(emulator, segment_with_people):
    path = f"/api/v1/segments/{segment_with_people}/add_customers"
    bad = emulator.track.post(path, params={"id_type": "phone"}, json={"ids": ["u1"]})
    assert bad.status_code == 400 and "id_type" in error_text(bad)
    assert emulator.track.post(path, params={"id_type": "email"}, json={"ids": ["U2@X.IO"]}).status_code == 200
    assert emulator.track.post(path, params={"id_type": "email"}, json={"ids": ["u3"]}).status_code == 200
    assert emulator.state()["segments"][str(segment_with_people)]["members"] == ["u2"]


@pytest.mark.parametrize("segment_id, status, expected", [
    ("abc", 400, "must be an integer"),
    ("1.5", 400, "must be an integer"),
    ("999", 404, "not found"),
    ("1", 400, "not a manual segment"),          # the workspace's data-driven segment
])
def test_segment_must_be_an_existing_manual_one(emulator, segment_id, status, expected):
    response = emulator.track.post(f"/api/v1/segments/{segment_id}/add_customers", json={"ids": ["u1"]})
    assert response.status_code == status and expected in error_text(response)


def test_remove_customers(emulator, segment_with_people):
    base = f"/api/v1/segments/{segment_with_people}"
    emulator.track.post(f"{base}/add_customers", json={"ids": ["u0", "u1", "u2"]})
    assert emulator.track.post(f"{base}/remove_customers", json={"ids": ["u1", "nobody"]}).status_code == 200
    assert emulator.state()["segments"][str(segment_with_people)]["members"] == ["u0", "u2"]


# ----- App API ------------------------------------------------------------------------------------------------

def test_app_api_creates_lists_and_pages_through_membership(emulator, segment_with_people):
    emulator.track.post(f"/api/v1/segments/{segment_with_people}/add_customers",
                        json={"ids": [f"u{i}" for i in range(5)]})
    listed = emulator.app.get("/v1/segments").json()["segments"]
    assert {"id": segment_with_people, "name": "CIO__Test", "type": "manual"}.items() <= listed[-1].items()
    assert emulator.app.get(f"/v1/segments/{segment_with_people}").json()["segment"]["name"] == "CIO__Test"
    pages, start = [], None
    while True:
        page = emulator.app.get(f"/v1/segments/{segment_with_people}/membership",
                                params={"limit": 2, **({"start": start} if start else {})}).json()
        pages.append(page["ids"])
        start = page["next"]
        if not start:
            break
    assert pages == [["u0", "u1"], ["u2", "u3"], ["u4"]]
    assert emulator.app.post("/v1/segments", json={"segment": {}}).status_code == 400
    assert emulator.app.get("/v1/segments/999/membership").status_code == 404


# ----- v2 batch ------------------------------------------------------------------------------------------------

def test_batch_answers_207_with_the_index_of_each_bad_op_and_applies_the_rest(emulator):
    ops = [identify_op("u0", a=0), identify_op("u1", a=1), identify_op("u2", note="x" * 1001),
           identify_op("u3", a=3),
           {"type": "person", "identifiers": {"id": "u4"}, "action": "event", "name": "n" * 101},
           {"type": "person", "identifiers": {"id": "u5", "email": "e@x.io"}, "action": "identify"},
           {"type": "person", "identifiers": {"id": "u6"}, "action": "teleport"}]
    response = emulator.track.post("/api/v2/batch", json={"batch": ops})
    assert response.status_code == 207
    errors = response.json()["errors"]
    assert [(e["batch_index"], e["field"]) for e in errors] == [(2, "attributes"), (4, "name"),
                                                               (5, "identifiers"), (6, "action")]
    assert "1001 bytes" in errors[0]["message"]
    assert sorted(emulator.state()["people"]) == ["u0", "u1", "u3"]


def test_batch_all_good_is_200_and_applies_identify_event_delete(emulator):
    ops = [identify_op("u1", a=1), identify_op("u2", a=2),
           {"type": "person", "identifiers": {"id": "u1"}, "action": "event", "name": "bought",
            "id": ULID_A, "timestamp": 1_700_000_000, "attributes": {"total": 9.5}},
           {"type": "person", "identifiers": {"id": "u2"}, "action": "delete"}]
    assert emulator.track.post("/api/v2/batch", json={"batch": ops}).status_code == 200
    people = emulator.state()["people"]
    assert list(people) == ["u1"]
    assert people["u1"]["events"] == [{"id": ULID_A, "name": "bought", "timestamp": 1_700_000_000,
                                       "data": {"total": 9.5}}]


def test_batch_request_over_500_kb_is_refused_whole(emulator):
    op = identify_op("u", **{f"field_{i}": "x" * 990 for i in range(30)})   # ~30 KB per op
    under = [{**op, "identifiers": {"id": f"u{i}"}} for i in range(16)]
    over = [{**op, "identifiers": {"id": f"v{i}"}} for i in range(18)]
    assert len(json.dumps({"batch": under})) < 500 * 1024 < len(json.dumps({"batch": over}))
    assert emulator.track.post("/api/v2/batch", json={"batch": under}).status_code == 200
    response = emulator.track.post("/api/v2/batch", json={"batch": over})
    assert response.status_code == 400 and "at most 512000" in error_text(response)
    assert not any(key.startswith("v") for key in emulator.state()["people"])


def test_batch_op_over_32_kb_is_rejected_alone(emulator):
    big = identify_op("big", **{f"field_{i}": "x" * 999 for i in range(34)})
    response = emulator.track.post("/api/v2/batch", json={"batch": [identify_op("ok", a=1), big]})
    assert response.status_code == 207
    assert [(e["batch_index"], e["reason"]) for e in response.json()["errors"]] == [(1, "too_large")]


@pytest.mark.parametrize("body", [{"batch": []}, {"ops": []}, [identify_op("u", a=1)]])
def test_batch_without_a_batch_list_is_a_400(emulator, body):
    assert emulator.track.post("/api/v2/batch", json=body).status_code == 400


def test_entity_takes_one_op(emulator):
    assert emulator.track.post("/api/v2/entity", json=identify_op("u1", a=1)).status_code == 200
    bad = emulator.track.post("/api/v2/entity", json=identify_op("u2", a="x" * 1001))
    assert bad.status_code == 400 and "1001 bytes" in bad.json()["errors"][0]["message"]
    assert list(emulator.state()["people"]) == ["u1"]


# ----- faults, limits, persistence ---------------------------------------------------------------------------

def test_rate_limit_answers_429_with_retry_after(start_emulator):
    emulator = start_emulator(rate_limit=5)
    began = time.monotonic()
    responses = [emulator.track.put(f"/api/v1/customers/u{i}", json={"a": i}) for i in range(12)]
    statuses = [r.status_code for r in responses]
    limited = [r for r in responses if r.status_code == 429]
    if time.monotonic() - began < 1.0:      # all inside one window (always, unless the machine is swamped)
        assert statuses == [200] * 5 + [429] * 7
    assert statuses[:6] == [200] * 5 + [429] and statuses.count(200) <= 10
    assert all(r.headers["Retry-After"] == "1" for r in limited)
    assert len(emulator.state()["people"]) == statuses.count(200)
    assert emulator.count("PUT /api/v1/customers/{identifier}", "429") == len(limited)
    time.sleep(1.05)
    assert emulator.track.put("/api/v1/customers/late", json={}).status_code == 200


def test_rate_limit_without_retry_after_when_configured_so(start_emulator):
    emulator = start_emulator(rate_limit=1, retry_after=None)
    statuses = [emulator.track.put("/api/v1/customers/u", json={}) for _ in range(3)]
    assert [r.status_code for r in statuses] == [200, 429, 429]
    assert "Retry-After" not in statuses[1].headers


def test_app_api_is_limited_to_10_requests_per_second(emulator):
    began = time.monotonic()
    statuses = [emulator.app.get("/v1/segments").status_code for _ in range(15)]
    if time.monotonic() - began < 1.0:
        assert statuses == [200] * 10 + [429] * 5
    assert statuses[:11] == [200] * 10 + [429]


def test_injected_failures_are_5xx_and_dropped_connections_repeatable_by_seed(start_emulator):
    def run(seed: int) -> list[str]:
        emulator = start_emulator(fail_rate=0.5, seed=seed)
        outcomes = []
        for i in range(40):
            try:
                outcomes.append(str(emulator.track.put(f"/api/v1/customers/u{i}", json={}).status_code))
            except httpx.TransportError:
                outcomes.append("dropped")
        assert emulator.anonymous.get("/_emulator/state").status_code == 200   # never faulted
        stats = emulator.stats()["PUT /api/v1/customers/{identifier}"]
        assert stats["dropped"] + stats["dropped_after_apply"] == outcomes.count("dropped")
        applied = [f"u{i}" for i, outcome in enumerate(outcomes) if outcome == "200"]
        assert len(emulator.state()["people"]) == len(applied) + stats["dropped_after_apply"]
        return outcomes

    first, again = run(seed=7), run(seed=7)
    assert first == again
    assert {"200", "dropped"} <= set(first) and {"500", "503"} & set(first)
    assert 8 <= first.count("200") <= 32


def test_latency_is_added_to_every_request(start_emulator):
    emulator = start_emulator(latency_ms=150)
    began = time.monotonic()
    emulator.track.put("/api/v1/customers/u", json={})
    assert time.monotonic() - began >= 0.15


def test_stats_count_requests_by_endpoint_and_status(emulator):
    emulator.track.put("/api/v1/customers/u1", json={})
    emulator.track.put("/api/v1/customers/u2", json={"x": "y" * 2000})
    emulator.anonymous.put("/api/v1/customers/u3", json={})
    assert emulator.stats()["PUT /api/v1/customers/{identifier}"] == {"200": 1, "400": 1, "401": 1}


def test_state_file_keeps_state_across_restarts(tmp_path):
    options = EmulatorOptions(state_file=tmp_path / "cio.json")
    with running(create_app(options, env={})) as url:
        httpx.put(f"{url}/api/v1/customers/u1", json={"plan": "pro"}, auth=("demo-site", "demo-key"))
        segment = httpx.post(f"{url}/v1/segments", json={"segment": {"name": "S"}},
                             headers={"Authorization": "Bearer demo-app-key"}).json()["segment"]
        httpx.post(f"{url}/api/v1/segments/{segment['id']}/add_customers", json={"ids": ["u1"]},
                   auth=("demo-site", "demo-key"))
    with running(create_app(options, env={})) as url:
        state = httpx.get(f"{url}/_emulator/state").json()
        again = httpx.post(f"{url}/v1/segments", json={"segment": {"name": "T"}},
                           headers={"Authorization": "Bearer demo-app-key"}).json()["segment"]
    assert state["people"]["u1"]["attributes"] == {"plan": "pro"}
    assert state["segments"][str(segment["id"])]["members"] == ["u1"]
    assert again["id"] == segment["id"] + 1


# ----- the phone identifier -------------------------------------------------------------------------------

def phone_op(phone, **attributes) -> dict:
    return {"type": "person", "identifiers": {"phone": phone}, "action": "identify", "attributes": attributes}


def test_phone_identifiers_are_refused_unless_the_workspace_has_them(emulator):
    response = emulator.track.post("/api/v2/batch", json={"batch": [phone_op("+14155552671", plan="pro")]})
    assert response.status_code == 207
    [error] = response.json()["errors"]
    assert error["field"] == "identifiers" and "phone only when the workspace has phone" in error["message"]
    assert emulator.state()["people"] == {}


def test_a_phone_workspace_finds_and_creates_people_by_e164_phone(start_emulator):
    emulator = start_emulator(env={"CUSTOMERIO_EMULATOR_PHONE_IDENTIFIER": "true"})
    response = emulator.track.post("/api/v2/batch", json={"batch": [
        phone_op("+14155552671", id="c1", plan="pro"),
        phone_op("+14155552671", plan="max", _update=True),      # found by phone: updated
        phone_op("4155552671", plan="x"),                        # not E.164
        phone_op("+1" + "5" * 15, plan="x"),                     # 16 digits
    ]})
    assert response.status_code == 207
    assert [(e["batch_index"], e["field"]) for e in response.json()["errors"]] == [(2, "identifiers"),
                                                                                  (3, "identifiers")]
    assert "E.164" in response.json()["errors"][0]["message"]
    people = emulator.state()["people"]
    assert people == {"c1": {"id": "c1", "cio_id": people["c1"]["cio_id"], "email": None, "events": [],
                             "attributes": {"phone": "+14155552671", "plan": "max"}}}
    # On v1 paths a phone is not an identifier: it is read as an id.
    assert emulator.track.put("/api/v1/customers/%2B14155552671", json={"plan": "v1"}).status_code == 200
    assert emulator.state()["people"]["+14155552671"]["attributes"] == {"plan": "v1"}


# ----- op-level timestamps ------------------------------------------------------------------------------

def timed(person_id: str, timestamp, **attributes) -> dict:
    return {**identify_op(person_id, **attributes), "timestamp": timestamp}


def test_an_older_timestamped_identify_never_overwrites_a_newer_one(emulator):
    batch = emulator.track.post("/api/v2/batch", json={"batch": [
        timed("u1", 1_700_000_200, plan="new", city="Oslo"),
        timed("u1", 1_700_000_100, plan="old", tier="gold"),     # arrives later, older: plan stays
    ]})
    assert batch.status_code == 200
    assert emulator.state()["people"]["u1"]["attributes"] == {"plan": "new", "city": "Oslo", "tier": "gold"}
    later = emulator.track.post("/api/v2/batch", json={"batch": [
        timed("u1", 1_700_000_150, city=None, plan="older"),     # across requests as well
        timed("u1", 1_700_000_200, city="Bergen"),               # equal: applies
    ]})
    assert later.status_code == 200
    assert emulator.state()["people"]["u1"]["attributes"] == {"plan": "new", "city": "Bergen", "tier": "gold"}
    untimed = emulator.track.post("/api/v2/batch", json={"batch": [identify_op("u1", plan="untimed")]})
    assert untimed.status_code == 200 and emulator.state()["people"]["u1"]["attributes"]["plan"] == "untimed"


@pytest.mark.parametrize("timestamp", [1_700_000_000_000, "1700000000", 1.5, True])
def test_an_identify_timestamp_must_be_whole_unix_seconds(emulator, timestamp):
    response = emulator.track.post("/api/v2/batch", json={"batch": [timed("u1", timestamp, plan="x")]})
    assert response.status_code == 207 and response.json()["errors"][0]["field"] == "timestamp"
    assert emulator.state()["people"] == {}


# ----- merge ---------------------------------------------------------------------------------------------

def test_merge_needs_an_existing_primary_and_moves_what_the_docs_list(emulator, segment_with_people):
    merge = "/api/v1/merge_customers"
    emulator.track.put("/api/v1/customers/p2", json={"plan": "pro", "city": ""})
    emulator.track.put("/api/v1/customers/s2", json={"plan": "basic", "city": "Oslo", "tier": "gold"})
    emulator.track.post(f"/api/v1/segments/{segment_with_people}/add_customers", json={"ids": ["s2"]})
    assert emulator.track.post(merge, json={"primary": {"id": "nobody"}, "secondary": {"id": "s2"}}).status_code == 200
    assert "s2" in emulator.state()["people"]                       # no primary: nothing happens
    assert emulator.track.post(merge, json={"primary": {"id": "p2"}, "secondary": {"id": "s2"}}).status_code == 200
    people = emulator.state()["people"]
    assert "s2" not in people and people["p2"]["attributes"] == {"plan": "pro", "city": "Oslo", "tier": "gold"}
    assert emulator.state()["segments"][str(segment_with_people)]["members"] == ["p2"]
    for body in ({"primary": {"id": "p2"}}, {"primary": {"id": "p2", "email": "a@x.io"}, "secondary": {"id": "x"}},
                 {"primary": {"phone": "+4791234567"}, "secondary": {"id": "x"}}):
        response = emulator.track.post(merge, json=body)
        assert response.status_code == 400 and "exactly one of id, email, cio_id" in error_text(response)


# ----- objects and relationships ------------------------------------------------------------------------

def object_op(object_id, action="identify", type_id="1", **fields) -> dict:
    return {"type": "object", "identifiers": {"object_type_id": type_id, "object_id": object_id},
            "action": action, **fields}


def test_objects_are_stored_with_their_relationships(emulator):
    emulator.track.post("/api/v2/batch", json={"batch": [identify_op("u1"), identify_op("u2")]})
    response = emulator.track.post("/api/v2/batch", json={"batch": [
        object_op("o1", attributes={"total": 12.5, "status": "paid", "lines": [{"sku": "A"}]},
                  cio_relationships=[{"identifiers": {"id": "u1"}, "relationship_attributes": {"role": "buyer"}}]),
        object_op("o1", "add_relationships", cio_relationships=[{"identifiers": {"id": "u2"}},
                                                                {"identifiers": {"id": "nobody"}}]),
        object_op("o1", "delete_relationships", cio_relationships=[{"identifiers": {"id": "u1"}}]),
        object_op("s1", type_id="2", attributes={"status": "active"}),
    ]})
    assert response.status_code == 200
    objects = emulator.state()["objects"]
    assert objects["1:o1"] == {"object_type_id": "1", "object_id": "o1", "relationships": ["u2"],
                               "attributes": {"total": 12.5, "status": "paid", "lines": [{"sku": "A"}]}}
    emulator.track.post("/api/v2/batch", json={"batch": [object_op("o1", attributes={"status": "", "total": None})]})
    emulator.track.delete("/api/v1/customers/u2")            # a deleted person loses its relationships
    assert emulator.state()["objects"]["1:o1"]["attributes"] == {"lines": [{"sku": "A"}]}
    assert emulator.state()["objects"]["1:o1"]["relationships"] == []
    emulator.track.post("/api/v2/batch", json={"batch": [object_op("s1", "delete", type_id="2")]})
    assert list(emulator.state()["objects"]) == ["1:o1"]


@pytest.mark.parametrize("op, field, message", [
    (object_op("o1", type_id="9"), "identifiers", "object type 9 does not exist"),
    (object_op("o1", type_id="0"), "identifiers", "string-formatted integer from 1"),
    (object_op("o1", type_id=1), "identifiers", "string-formatted integer from 1"),
    ({"type": "object", "identifiers": {"cio_object_id": "ob1"}, "action": "identify"}, "identifiers", "object_id"),
    (object_op("o" * 151), "identifiers", "151 bytes"),
    (object_op("o1", attributes={"note": "x" * 1001}), "attributes", "cannot be longer than 1000 bytes"),
    (object_op("o1", attributes={f"a{i}": i for i in range(301)}), "attributes", "more than 300 attributes"),
    (object_op("o1", "add_relationships"), "cio_relationships", "needs cio_relationships"),
    (object_op("o1", "add_relationships", cio_relationships=[]), "cio_relationships", "must be a list"),
    (object_op("o1", cio_relationships=[{"identifiers": {"id": "u1", "email": "a@x.io"}}]), "cio_relationships",
     "exactly one of"),
    (object_op("o1", cio_relationships=[{"identifiers": {"id": "u1"},
                                         "relationship_attributes": {"r": "x" * 1001}}]), "cio_relationships",
     "cannot be longer than 1000 bytes"),
    (object_op("o1", "merge"), "action", "not one of"),
])
def test_object_ops_that_break_the_documented_shapes_or_limits_are_refused(emulator, op, field, message):
    response = emulator.track.post("/api/v2/batch", json={"batch": [op]})
    assert response.status_code == 207
    [error] = response.json()["errors"]
    assert error["field"] == field and message in error["message"]
    assert emulator.state()["objects"] == {}


def test_the_300_attribute_cap_holds_per_object_across_calls(emulator):
    first = emulator.track.post("/api/v2/batch", json={"batch": [object_op("o1", attributes={f"a{i}": i for i in range(200)})]})
    assert first.status_code == 200
    over = emulator.track.post("/api/v2/batch", json={"batch": [object_op("o1", attributes={f"b{i}": i for i in range(101)})]})
    assert over.status_code == 207 and "per object" in over.json()["errors"][0]["message"]
    assert len(emulator.state()["objects"]["1:o1"]["attributes"]) == 200


def test_an_objects_attributes_may_total_100_kb_across_calls(emulator):
    def chunk(start: int) -> dict:
        return object_op("o1", attributes={f"a{i}": "x" * 990 for i in range(start, start + 30)})   # ~30 KB

    answers = [emulator.track.post("/api/v2/batch", json={"batch": [chunk(start)]}) for start in (0, 30, 60, 90)]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 207]
    assert "at most 102400 bytes in all" in answers[3].json()["errors"][0]["message"]
    assert len(emulator.state()["objects"]["1:o1"]["attributes"]) == 90
