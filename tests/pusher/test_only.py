"""`pusher sync --only IDS`: only the named customers' changes are sent and recorded; the
rest of the list is left for the next full sync; where they are now is read back."""

from __future__ import annotations

import json

import duckdb
import pytest
from typer.testing import CliRunner

from pusher.cli import app
from tests.pusher.conftest import sha

LIST = "FILE__Cart_Abandon_0-1d__NoPurchase"


@pytest.fixture
def run(project, monkeypatch):
    monkeypatch.setenv("PUSHER_FILE_DIR", str(project.out))
    for name in ("DBT_TARGET", "DBT_PROFILES_DIR", "DBT_TARGET_PATH"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()

    def invoke(*args: str) -> tuple[int, dict, str]:
        result = runner.invoke(app, [*args, "--project-dir", str(project.root)])
        return result.exit_code, json.loads(result.stdout) if "--json" in args else {}, result.stderr
    return invoke


def test_only_sends_the_slice_and_the_next_full_sync_the_rest(project, run):
    project.set_audience_range(0, 10)
    code, document, _ = run("sync", "-s", "sync_cart", "--only", "c000001,c000003", "--json")
    assert code == 0 and document["syncs"][0]["sent"] == {"adds": 2, "removes": 0, "updates": 0, "events": 0}
    assert set(project.listed()) == {"c000001", "c000003"}                 # plain adds: no Replace
    assert document["only"]["c000001"]["file"]["lists"] == [LIST]
    assert set(project.ledger()) == {"c000001", "c000003"}                 # recorded like any delivery
    history = json.loads(CliRunner().invoke(app, ["history", "--json", "--project-dir",
                                                  str(project.root)]).stdout)["runs"]
    assert history[0]["command"] == "sync --only c000001,c000003"
    views = project.sql("select count(*) from information_schema.tables where table_name like 'only__%'")
    with duckdb.connect(str(project.root / ".pusher" / "state.duckdb"), read_only=True) as state:
        views += state.execute("select count(*) from information_schema.tables where table_name like 'only__%'")\
            .fetchall()
    assert views == [(0,), (0,)]                                            # the slice views are dropped

    code, document, _ = run("sync", "-s", "sync_cart", "--json")
    assert code == 0 and document["syncs"][0]["sent"]["adds"] == 8
    assert project.listed() == project.audience()

    # c000002 and c000004 leave, c000005 changes its email: only c000002 goes now
    rows = [(f"c{i:06d}", sha(f"user{i}@example.com"), None) for i in (0, 1, 3, 6, 7, 8, 9)]
    project.set_audience(rows + [("c000005", sha("new5@example.com"), None)])
    code, document, stderr = run("sync", "-s", "sync_cart", "--only", "c000002", "--json")
    assert code == 0 and document["syncs"][0]["sent"] == {"adds": 0, "removes": 1, "updates": 0, "events": 0}
    listed = project.listed()
    assert "c000002" not in listed and "c000004" in listed
    assert listed["c000005"] == (sha("user5@example.com"), None)
    assert document["only"]["c000002"]["file"]["lists"] == []

    code, document, _ = run("sync", "-s", "sync_cart", "--only", "c000005", "--json")
    assert document["syncs"][0]["sent"] == {"adds": 1, "removes": 1, "updates": 0, "events": 0}
    assert project.listed()["c000005"] == (sha("new5@example.com"), None) and "c000004" in project.listed()

    code, document, _ = run("sync", "-s", "sync_cart", "--json")
    assert document["syncs"][0]["sent"] == {"adds": 0, "removes": 1, "updates": 0, "events": 0}
    assert project.listed() == project.audience()


def test_only_people_and_events_of_the_slice(project, run):
    project.sql("insert into cio_people values ('p1', 'ann@example.com', 'Ann', 1, true, null), "
                "('p2', 'bob@example.com', 'Bob', 2, false, null), ('p3', 'cy@example.com', 'Cy', 3, false, null)")
    project.sql("insert into cio_events values ('e1', 'p1', 'order_placed', timestamp '2024-01-01', 10), "
                "('e2', 'p2', 'order_placed', timestamp '2024-01-02', 20)")
    code, document, stderr = run("sync", "-s", "sync_people", "-s", "sync_events", "--only", "p2", "--json")
    assert code == 0
    assert set(project.people()) == {"p2"} and set(project.events()) == {"e2"}
    assert document["only"]["p2"]["file"]["attributes"]["email"] == "b***@example.com"
    assert not any("never delete" in w for s in document["syncs"] for w in s["warnings"])

    code, _, stderr = run("sync", "-s", "sync_people", "--only", "p1")        # the human table
    assert code == 0 and "where they are now" in stderr and "a***@example.com" in stderr
    assert "ann@example.com" not in stderr
    code, document, _ = run("sync", "-s", "sync_people", "--only", "p3", "--json")   # p1, p2 are not in the slice
    assert document["syncs"][0]["sent"]["updates"] == 1 and document["syncs"][0]["warnings"] == []

    code, document, _ = run("sync", "-s", "sync_people", "-s", "sync_events", "--json")
    assert set(project.people()) == {"p1", "p2", "p3"} and set(project.events()) == {"e1", "e2"}
    assert {s["sync"]: s["sent"]["updates"] + s["sent"]["events"] for s in document["syncs"]} == \
        {"sync_people": 0, "sync_events": 1}        # p3 went in its own slice


def test_only_rejects_what_is_not_a_customer_id(project, run):
    project.set_audience_range(0, 3)
    for bad in ("", "c1,x'; drop table aud_cart; --"):
        code, document, _ = run("sync", "-s", "sync_cart", "--only", bad, "--json")
        assert code == 5 and "--only" in document["error"]
    assert project.listed() == {} and project.sql("select count(*) from aud_cart") == [(3,)]
    history = CliRunner().invoke(app, ["history", "--json", "--project-dir", str(project.root)])
    assert json.loads(history.stdout)["runs"] == []                          # refused before any run started
