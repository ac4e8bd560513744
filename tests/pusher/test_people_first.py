"""Issue 9.2: a Customer.io segment member is recorded only once Customer.io knows its person.

Customer.io silently ignores segment ids that match nobody, so an add for a person whose
identify was not acknowledged would be recorded as delivered and never resent. A real DuckDB
warehouse and state file, the engine, the Customer.io emulator over HTTP."""

from __future__ import annotations

import contextlib

import httpx
import pytest

from pusher.config import load_project
from pusher.emulators.customerio import create_app
from pusher.emulators.options import EmulatorOptions
from pusher.emulators.server import running
from pusher.errors import EXIT_DESTINATION_UNREACHABLE, EXIT_OK, EXIT_ROWS_REJECTED
from pusher.status import status
from pusher.warehouse import Warehouse, load_profile
from tests.customerio.cio_sync_helpers import CioProject

LIST = "CIO__VIP_People_First"
SYNCS = {"people_sync": ({"destination": "customerio", "kind": "people"}, "cio_people"),
         "events_sync": ({"destination": "customerio", "kind": "events"}, "cio_events"),
         "segment_sync": ({"destination": "customerio", "kind": "audience", "list_name": LIST}, "aud_vip")}


@pytest.fixture
def emulators():
    """(working emulator URL, one that answers every request with a server error)."""
    with contextlib.ExitStack() as stack:
        good = stack.enter_context(running(create_app(EmulatorOptions(), env={})))
        failing = stack.enter_context(running(create_app(EmulatorOptions(fail_rate=1.0), env={})))
        yield good, failing


@pytest.fixture
def project(tmp_path, emulators) -> CioProject:
    project = CioProject(tmp_path, emulators[0], SYNCS, env={"CUSTOMERIO_MAX_ATTEMPTS": "2"})
    project.sql("create table cio_people (customer_id varchar, email varchar, first_name varchar)")
    project.sql("create table cio_events (event_id varchar, customer_id varchar, event_name varchar, "
                "occurred_at timestamp)")
    project.sql("create table aud_vip (customer_id varchar, email_sha256 varchar, phone_sha256 varchar)")
    return project


def add_person(project: CioProject, key: str, first_name: str = "Ann") -> None:
    project.sql("insert into cio_people values (?, ?, ?)", [key, f"{key}@example.com", first_name])
    project.sql("insert into aud_vip values (?, sha256(?), null)", [key, f"{key}@example.com"])


def segment_members(url: str) -> set[str]:
    state = httpx.get(f"{url}/_emulator/state").json()
    return {member for segment in state["segments"].values() if segment["name"] == LIST for member in segment["members"]}


def outcome(report, name: str):
    return next(item for item in report.outcomes if item.sync == name)


def waiting_in_status(project: CioProject) -> int | None:
    wh = Warehouse.connect(load_profile(project.root, env={}))
    try:
        project_definition = load_project(project.root)
        rows = status(project_definition, wh, project_definition.select(["segment_sync"]), env=project.env)
        return rows[0]["waiting_for_people"]
    finally:
        wh.close()


def test_members_wait_while_the_people_sync_fails_then_enter(project, emulators):
    good, failing = emulators
    add_person(project, "c1")
    add_person(project, "c2")
    project.env["CUSTOMERIO_TRACK_URL"] = failing
    assert project.sync(["people_sync"]).exit_code == EXIT_DESTINATION_UNREACHABLE
    project.env["CUSTOMERIO_TRACK_URL"] = good

    report = project.sync(["segment_sync"])
    segment = outcome(report, "segment_sync")
    assert report.exit_code == EXIT_OK and segment.sent["adds"] == 0 and segment.plan["waiting"] == 2
    assert any("wait for their person" in warning for warning in segment.warnings)
    assert segment_members(good) == set()
    assert waiting_in_status(project) == 2

    report = project.sync(["people_sync", "segment_sync"])
    assert report.exit_code == EXIT_OK and outcome(report, "segment_sync").sent["adds"] == 2
    assert segment_members(good) == {"c1", "c2"}
    assert waiting_in_status(project) == 0


def test_a_rejected_person_enters_the_segment_once_fixed(project, emulators):
    good, _ = emulators
    add_person(project, "c1")
    add_person(project, "c2", first_name="x" * 2000)     # over Customer.io's 1000-byte value limit
    report = project.sync(["people_sync", "segment_sync"])
    assert report.exit_code == EXIT_ROWS_REJECTED and outcome(report, "people_sync").rejected == 1
    segment = outcome(report, "segment_sync")
    assert segment.sent["adds"] == 1 and segment.plan["waiting"] == 1
    assert segment_members(good) == {"c1"}

    project.sql("update cio_people set first_name = 'Bo' where customer_id = 'c2'")
    report = project.sync(["people_sync", "segment_sync"])
    assert report.exit_code == EXIT_OK and outcome(report, "segment_sync").sent["adds"] == 1
    assert segment_members(good) == {"c1", "c2"}


def test_selecting_the_segment_alone_never_records_a_new_member_early(project, emulators):
    good, _ = emulators
    add_person(project, "c1")
    assert project.sync(["people_sync", "segment_sync"]).exit_code == EXIT_OK
    add_person(project, "c2")
    report = project.sync(["segment_sync"])
    assert report.exit_code == EXIT_OK and outcome(report, "segment_sync").sent["adds"] == 0
    assert segment_members(good) == {"c1"} and waiting_in_status(project) == 1
    assert project.sync(["people_sync"]).exit_code == EXIT_OK
    assert outcome(project.sync(["segment_sync"]), "segment_sync").sent["adds"] == 1
    assert segment_members(good) == {"c1", "c2"}


def test_a_person_created_by_an_acknowledged_event_is_known(project, emulators):
    good, _ = emulators
    # c3 has no email, so no people row, but an order event: Customer.io creates the person it names.
    project.sql("insert into cio_events values ('e1', 'c3', 'order_placed', timestamp '2024-01-01')")
    project.sql("insert into aud_vip values ('c3', null, sha256('+15550100')), ('c4', null, sha256('+15550101'))")
    report = project.sync(["events_sync", "segment_sync"])
    segment = outcome(report, "segment_sync")
    assert report.exit_code == EXIT_OK and segment.sent["adds"] == 1 and segment.plan["waiting"] == 1
    assert segment_members(good) == {"c3"}, "c4 is known to nobody: it waits"
