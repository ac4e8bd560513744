"""The whole loop against the file destination and a real DuckDB file."""

from __future__ import annotations

from pusher.destinations.file import FileDestination
from pusher.errors import EXIT_CONFIG_ERROR, EXIT_GUARD_STOPPED, EXIT_OK, EXIT_ROWS_REJECTED

from .conftest import member, sha


def test_first_sync_then_only_the_difference(project):
    project.set_audience_range(0, 50)
    report = project.sync()
    assert report.exit_code == EXIT_OK
    outcome = report.outcomes[0]
    assert outcome.sent["adds"] == 50 and outcome.sent["removes"] == 0
    assert project.listed() == project.audience() == project.ledger()

    project.set_audience_range(5, 60)      # 5 leave, 10 join
    report = project.sync()
    outcome = report.outcomes[0]
    assert (outcome.sent["adds"], outcome.sent["removes"]) == (10, 5)
    assert project.listed() == project.audience() == project.ledger()


def test_no_change_rerun_sends_zero_requests(project):
    project.set_audience_range(0, 30)
    project.sync()
    before = len(project.batches())
    report = project.sync()
    outcome = report.outcomes[0]
    assert outcome.requests == 0 and outcome.sent == {"adds": 0, "removes": 0, "updates": 0, "events": 0}
    assert len(project.batches()) == before


def test_email_change_removes_the_hash_that_was_sent(project):
    project.set_audience([member(1), member(2)])
    project.sync()
    project.set_audience([member(1, "new-address@example.com"), member(2)])
    report = project.sync()
    assert report.outcomes[0].sent["removes"] == 1 and report.outcomes[0].sent["adds"] == 1
    log = (project.out / "lists" / "FILE__Cart_Abandon_0-1d__NoPurchase.jsonl").read_text().splitlines()
    assert sha("user1@example.com") in log[-2] and '"op":"remove"' in log[-2]     # removes first, old hash
    assert sha("new-address@example.com") in log[-1] and '"op":"add"' in log[-1]
    assert project.listed() == project.audience() == project.ledger()


def test_empty_model_is_stopped_by_the_remove_guard_until_forced(project):
    project.set_audience_range(0, 40)
    project.sync()
    project.set_audience([])
    report = project.sync()
    outcome = report.outcomes[0]
    assert report.exit_code == EXIT_GUARD_STOPPED
    assert "sync_cart" in outcome.message and "40 of 40" in outcome.message and "--override remove_share" in outcome.message
    assert len(project.listed()) == 40          # nothing was sent
    report = project.sync(force=True)
    assert report.exit_code == EXIT_OK and project.listed() == {} and project.ledger() == {}


def test_remove_share_threshold_from_meta(project):
    project.set_audience_range(0, 100)
    project.sync()
    project.set_audience_range(0, 70)            # 30% leave
    assert project.sync().exit_code == EXIT_GUARD_STOPPED
    project.set_meta("sync_cart", max_remove_share=0.5)
    assert project.sync().exit_code == EXIT_OK
    assert project.listed() == project.audience()


def test_rejected_rows_are_retried_then_exhausted(project):
    project.set_meta("sync_cart", max_row_attempts=2)
    project.set_audience_range(0, 10)
    picky = FileDestination(project.out, reject_keys=r"^c00000[37]$")
    first = project.sync(destination=picky)
    assert first.exit_code == EXIT_ROWS_REJECTED
    assert first.outcomes[0].rejected == 2 and first.outcomes[0].pending_retries == 2
    assert "c000003" not in project.ledger()
    second = project.sync(destination=picky)             # retried once more, then spent
    assert second.outcomes[0].sent["adds"] == 0 and second.outcomes[0].rejected == 2
    assert second.outcomes[0].exhausted == 2
    third = project.sync(destination=picky)              # exhausted: not resent, still reported
    assert third.outcomes[0].requests == 0 and third.exit_code == EXIT_ROWS_REJECTED
    assert third.outcomes[0].exhausted == 2
    reasons = {r["member_key"]: r for r in third.outcomes[0].rejection_samples}
    assert reasons["c000007"]["attempts"] == 2 and "PUSHER_FILE_REJECT_KEYS" in reasons["c000007"]["reason"]
    # Once the destination accepts (a new email gives the row a new fingerprint), it is sent.
    project.sql("update aud_cart set email_sha256 = ? where customer_id = 'c000003'", [sha("fixed@example.com")])
    fourth = project.sync()
    assert fourth.outcomes[0].sent["adds"] == 1 and "c000003" in project.listed()


def test_malformed_rows_stop_the_sync_and_name_the_row(project):
    project.set_audience([member(1), ("c000002", "NOT-A-HASH", None)])
    report = project.sync()
    assert report.exit_code == EXIT_CONFIG_ERROR
    assert "sync_cart" in report.outcomes[0].message and "c000002" in report.outcomes[0].message
    assert project.listed() == {}
    project.set_audience([member(1), member(1)])
    report = project.sync()
    assert "duplicate customer_id" in report.outcomes[0].message and "c000001" in report.outcomes[0].message
    project.set_audience([member(1), (None, sha("x@example.com"), None)])
    report = project.sync()
    assert "NULL customer_id" in report.outcomes[0].message and sha("x@example.com") in report.outcomes[0].message
    assert project.listed() == {}


def test_failed_dbt_test_upstream_stops_the_sync(project):
    import json

    project.set_audience_range(0, 5)
    (project.root / "target" / "run_results.json").write_text(json.dumps({"results": [
        {"unique_id": "test.proj.not_null_stg_store__customers_customer_id.abc", "status": "fail"}]}))
    report = project.sync()
    assert report.exit_code == EXIT_GUARD_STOPPED
    assert "not_null_stg_store__customers_customer_id" in report.outcomes[0].message
    assert project.listed() == {}
    assert project.sync(force=True).exit_code == EXIT_OK


def test_stale_source_stops_the_sync(project):
    import json

    project.set_audience_range(0, 5)
    (project.root / "target" / "sources.json").write_text(json.dumps({"results": [
        {"unique_id": "source.proj.store.customers", "status": "error", "max_loaded_at": "2020-01-01"}]}))
    report = project.sync()
    assert report.exit_code == EXIT_GUARD_STOPPED and "source.proj.store.customers" in report.outcomes[0].message


def test_lost_ledger_reconciles_with_replace(project):
    project.set_audience_range(0, 20)
    project.sync()
    project.lose_ledger()
    project.set_audience_range(10, 30)
    report = project.sync()
    assert report.exit_code == EXIT_OK
    assert project.listed() == project.audience() == project.ledger()    # no duplicate, no stale member


def test_people_send_only_changed_attributes_and_explicit_clears(project):
    project.sql("insert into cio_people values ('p1', 'a@example.com', 'Ann', 10, true, timestamp '2024-01-02 03:04:05'),"
                " ('p2', 'b@example.com', null, null, false, null)")
    report = project.sync(["sync_people"])
    assert report.exit_code == EXIT_OK and report.outcomes[0].sent["updates"] == 2
    people = project.people()
    assert people["p1"] == {"email": "a@example.com", "first_name": "Ann", "loyalty_points": 10, "vip": True,
                            "last_order_at": 1704164645}
    assert people["p2"] == {"email": "b@example.com", "vip": False}
    project.sql("update cio_people set loyalty_points = 12, first_name = null where customer_id = 'p1'")
    report = project.sync(["sync_people"])
    assert report.outcomes[0].sent["updates"] == 1
    import json
    last = json.loads((project.out / "people.jsonl").read_text().splitlines()[-1])
    assert last["people"] == [{"id": "p1", "is_new": False, "attributes": {"first_name": None, "loyalty_points": 12}}]
    assert project.sync(["sync_people"]).outcomes[0].requests == 0


def test_events_are_sent_once(project):
    project.sql("insert into cio_events values ('e1', 'p1', 'order_placed', timestamp '2024-01-01', 12.50),"
                " ('e2', 'p1', 'order_placed', timestamp '2024-01-02', null)")
    assert project.sync(["sync_events"]).outcomes[0].sent["events"] == 2
    project.sql("insert into cio_events values ('e3', 'p2', 'cart_viewed', timestamp '2024-01-03', 1)")
    report = project.sync(["sync_events"])
    assert report.outcomes[0].sent["events"] == 1
    events = project.events()
    assert set(events) == {"e1", "e2", "e3"}
    assert events["e1"]["data"] == {"order_total": 12.5} and events["e2"]["data"] == {}
    assert events["e3"]["timestamp"] == 1704240000


def test_plan_sends_nothing_and_estimates(project):
    project.set_audience_range(0, 2500)
    report = project.plan()
    plan = report.outcomes[0].plan
    assert plan["adds"] == 2500 and plan["estimated_requests"] == 3
    assert len(plan["samples"]["adds"]) == 5 and plan["samples"]["adds"][0]["customer_id"] == "c000000"
    assert project.listed() == {} and project.ledger() == {}
