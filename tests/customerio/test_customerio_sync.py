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
