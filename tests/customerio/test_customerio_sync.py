"""Customer.io syncs end to end: a real DuckDB warehouse and ledger, the engine, the emulator over HTTP."""

from __future__ import annotations

import pytest
from cio_sync_helpers import CioProject

from pusher.errors import EXIT_OK, EXIT_ROWS_REJECTED

PEOPLE = {"people_sync": ({"destination": "customerio", "kind": "people"}, "cio_people")}


@pytest.fixture
def people_project(tmp_path, emulator):
    return CioProject(tmp_path, emulator.url, PEOPLE)


def test_the_per_person_cap_counts_what_earlier_runs_left_on_the_profile(people_project, emulator):
    project = people_project
    first = ", ".join(f"a{i} integer" for i in range(259))
    project.sql(f"create table cio_people (customer_id varchar, email varchar, {first})")
    values = ", ".join(str(i) for i in range(259))
    project.sql(f"insert into cio_people values ('full', 'full@example.com', {values}), "
                f"('sparse', 'sparse@example.com', {', '.join(['null'] * 259)})")
    assert project.sync(["people_sync"]).exit_code == EXIT_OK
    assert len(emulator.state()["people"]["full"]["attributes"]) == 260
    # The model drops a0..a19 and gains b0..b59: Customer.io keeps the dropped ones, so `full` would
    # hold 240 + 20 + 60 = 320; `sparse` holds its email only and takes the new ones.
    project.sql("create or replace table cio_people as select customer_id, email, "
                + ", ".join(f"a{i}" for i in range(20, 259)) + ", "
                + ", ".join(f"cast({i} as integer) as b{i}" for i in range(60)) + " from cio_people")
    report = project.sync(["people_sync"])
    outcome = report.outcomes[0]
    assert report.exit_code == EXIT_ROWS_REJECTED and outcome.sent["updates"] == 1 and outcome.rejected == 1
    [sample] = outcome.rejection_samples
    assert sample["member_key"] == "full" and "would hold 320 attributes" in sample["reason"]
    assert "full@example.com" not in str(outcome.__dict__)
    people = emulator.state()["people"]
    assert len(people["full"]["attributes"]) == 260 and "b0" not in people["full"]["attributes"]
    assert len(people["sparse"]["attributes"]) == 61


def test_struct_list_and_json_columns_go_as_nested_values_and_diff_by_value(people_project, emulator):
    project = people_project
    project.sql("create table cio_people (customer_id varchar, email varchar, "
                "address struct(city varchar, zip integer), sizes varchar[], prefs json, "
                "last_order struct(total decimal(10, 2), placed_at timestamp))")
    project.sql("""insert into cio_people values
        ('c1', 'a@example.com', {'city': 'Oslo', 'zip': 150}, ['M', 'L'], '{"news": true, "topics": [1, 2]}',
         {'total': 12.50, 'placed_at': timestamp '2024-01-02 03:04:05'}),
        ('c2', 'b@example.com', null, [], 'null', null)""")
    assert project.sync(["people_sync"]).exit_code == EXIT_OK
    people = emulator.state()["people"]
    assert people["c1"]["attributes"] == {
        "email": "a@example.com", "address": {"city": "Oslo", "zip": 150}, "sizes": ["M", "L"],
        "prefs": {"news": True, "topics": [1, 2]}, "last_order": {"total": 12.5, "placed_at": 1704164645}}
    assert people["c2"]["attributes"] == {"email": "b@example.com", "sizes": []}
    assert project.sync(["people_sync"]).outcomes[0].requests == 0          # unchanged nested values: nothing
    # Someone edits c1's address in Customer.io: only changed attributes are sent, so it stays.
    assert emulator.track.put("/api/v1/customers/c1", json={"address": {"city": "Bergen"}}).status_code == 200
    project.sql("""update cio_people set prefs = '{"topics": [1, 2], "news": false}' where customer_id = 'c1'""")
    project.sql("update cio_people set sizes = ['S'] where customer_id = 'c2'")
    report = project.sync(["people_sync"])
    assert report.exit_code == EXIT_OK and report.outcomes[0].sent["updates"] == 2
    people = emulator.state()["people"]
    assert people["c1"]["attributes"]["prefs"] == {"news": False, "topics": [1, 2]}
    assert people["c1"]["attributes"]["address"] == {"city": "Bergen"} and people["c2"]["attributes"]["sizes"] == ["S"]


def test_a_people_sync_can_identify_people_by_phone(tmp_path, start_emulator):
    emulator = start_emulator(env={"CUSTOMERIO_EMULATOR_PHONE_IDENTIFIER": "true"})
    project = CioProject(tmp_path, emulator.url, PEOPLE, env={"CUSTOMERIO_IDENTIFIER": "phone"})
    project.sql("create table cio_people (customer_id varchar, phone varchar, plan varchar)")
    project.sql("insert into cio_people values ('c1', '+4791234567', 'pro'), ('c2', null, 'pro')")
    report = project.sync(["people_sync"])
    assert report.exit_code == EXIT_ROWS_REJECTED and report.outcomes[0].sent["updates"] == 1
    assert report.outcomes[0].rejection_samples[0]["member_key"] == "c2"
    project.sql("update cio_people set plan = 'max'")
    assert project.sync(["people_sync"]).outcomes[0].sent["updates"] == 1    # c1 by phone, with _update
    assert emulator.state()["people"] == {"c1": {"id": "c1", "cio_id": "00000001", "email": None, "events": [],
                                                 "attributes": {"phone": "+4791234567", "plan": "max"}}}


def test_identify_ops_carry_the_row_state_time_so_older_state_never_wins(people_project, emulator):
    project = people_project
    project.sql("create table cio_people (customer_id varchar, plan varchar, plan_updated_at timestamp)")
    project.sql("insert into cio_people values ('c1', 'pro', timestamp '2026-11-20 10:00:00')")
    assert project.sync(["people_sync"]).exit_code == EXIT_OK
    # A request of older state that arrives late (say, a retry stuck in a queue) is ignored there.
    stale = {"type": "person", "identifiers": {"id": "c1"}, "action": "identify",
             "timestamp": 1_795_168_800 - 3600, "attributes": {"plan": "stale"}}   # an hour before the row's time
    assert emulator.track.post("/api/v2/batch", json={"batch": [stale]}).status_code == 200
    assert emulator.state()["people"]["c1"]["attributes"]["plan"] == "pro"
    project.sql("update cio_people set plan = 'max', plan_updated_at = timestamp '2026-11-21 10:00:00'")
    assert project.sync(["people_sync"]).outcomes[0].sent["updates"] == 1
    assert emulator.state()["people"]["c1"]["attributes"]["plan"] == "max"


# ----- objects ---------------------------------------------------------------------------------------------

OBJECTS = {**PEOPLE, "orders_sync": ({"destination": "customerio", "kind": "objects", "object_type_id": "1"},
                                     "cio_objects_orders")}


def test_objects_are_diffed_like_people_and_carry_their_relationship(tmp_path, emulator):
    project = CioProject(tmp_path, emulator.url, OBJECTS)
    project.sql("create table cio_people (customer_id varchar, email varchar)")
    project.sql("insert into cio_people values ('c1', 'a@example.com'), ('c2', 'b@example.com')")
    project.sql("create table cio_objects_orders (object_id varchar, customer_id varchar, total double, "
                "status varchar, ordered_at timestamp)")
    project.sql("insert into cio_objects_orders values ('o1', 'c1', 12.5, 'paid', timestamp '2026-11-19 10:00:00'), "
                f"('o2', 'c2', 30, 'paid', null), ('{'o' * 151}', 'c1', 1, 'paid', null)")
    report = project.sync(["people_sync", "orders_sync"])
    orders = report.outcomes[1]
    assert report.exit_code == EXIT_ROWS_REJECTED and orders.sent["updates"] == 2 and orders.rejected == 1
    assert "object id is 151 bytes" in orders.rejection_samples[0]["reason"]
    objects = emulator.state()["objects"]
    assert objects["1:o1"] == {"object_type_id": "1", "object_id": "o1", "relationships": ["c1"],
                               "attributes": {"total": 12.5, "status": "paid", "ordered_at": 1795082400}}
    assert objects["1:o2"]["relationships"] == ["c2"] and objects["1:o2"]["attributes"] == {"total": 30, "status": "paid"}
    project.sql(f"delete from cio_objects_orders where object_id = '{'o' * 151}'")
    assert project.sync(["orders_sync"]).outcomes[0].requests == 0                    # nothing changed
    # Someone edits o1's total in Customer.io: only changed attributes are sent, so it stays.
    emulator.track.post("/api/v2/batch", json={"batch": [{"type": "object", "action": "identify",
        "identifiers": {"object_type_id": "1", "object_id": "o1"}, "attributes": {"total": 99}}]})
    project.sql("update cio_objects_orders set status = 'refunded', customer_id = 'c2' where object_id = 'o1'")
    project.sql("update cio_objects_orders set customer_id = null where object_id = 'o2'")
    report = project.sync(["orders_sync"])
    assert report.exit_code == EXIT_OK and report.outcomes[0].sent["updates"] == 2
    objects = emulator.state()["objects"]
    assert objects["1:o1"]["attributes"] == {"total": 99, "status": "refunded", "ordered_at": 1795082400}
    assert objects["1:o1"]["relationships"] == ["c2"]              # moved: the old one was deleted
    assert objects["1:o2"]["relationships"] == []                  # gone from the model: delete_relationships


def test_objects_syncs_name_their_object_type(tmp_path, emulator):
    from pusher.config import validate_pusher_meta
    from pusher.errors import ConfigError

    base = {"destination": "customerio", "kind": "objects"}
    for value in (None, "0", "orders", True):
        with pytest.raises(ConfigError, match="object_type_id must name the object type"):
            validate_pusher_meta("orders_sync", {**base, "object_type_id": value} if value is not None else base)
    assert validate_pusher_meta("orders_sync", {**base, "object_type_id": 2})["object_type_id"] == "2"
    with pytest.raises(ConfigError, match="only applies to objects syncs"):
        validate_pusher_meta("people_sync", {"destination": "customerio", "kind": "people", "object_type_id": "1"})
    with pytest.raises(ConfigError, match="not supported by file"):
        validate_pusher_meta("x", {"destination": "file", "kind": "objects", "object_type_id": "1"})


def test_a_first_audience_sync_asks_for_the_segment_once_before_creating_it(tmp_path, emulator):
    """The size check and the create share one lookup; an empty new segment is not read back."""
    project = CioProject(tmp_path, emulator.url, {"sync_aud": (
        {"destination": "customerio", "kind": "audience", "list_name": "CIO__First_Fill"}, "aud")})
    project.sql("create table aud as select 'c' || cast(i as varchar) as customer_id, "
                "sha256('u' || cast(i as varchar)) as email_sha256, cast(null as varchar) as phone_sha256 "
                "from range(2500) t(i)")
    report = project.sync(["sync_aud"])
    assert report.exit_code == EXIT_OK and report.outcomes[0].sent["adds"] == 2500
    assert (emulator.count("GET /v1/segments"), emulator.count("POST /v1/segments")) == (1, 1)
    assert not [endpoint for endpoint in emulator.stats() if endpoint.endswith("/membership")]
    assert emulator.count("POST /api/v1/segments/{segment_id}/add_customers", "200") == 3
