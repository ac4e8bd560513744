"""Identifiers ever sent are never forgotten; hash-keyed lists; delivery order; malformed
rows caught on the fingerprint diff's slow path."""

from __future__ import annotations

import json

from pusher.destinations.base import BatchResult
from pusher.destinations.file import FileDestination
from pusher.errors import EXIT_CONFIG_ERROR, EXIT_OK
from pusher.ledger import table
from pusher.warehouse import Warehouse, load_profile

from .conftest import member, sha

LIST = "FILE__Cart_Abandon_0-1d__NoPurchase"


def log_records(project):
    path = project.out / "lists" / f"{LIST}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def held_pairs(project) -> set[tuple[str, str]]:
    """Like an ad platform: the list holds (member, identifier) pairs; a remove drops exactly the pair."""
    held: set[tuple[str, str]] = set()
    for record in log_records(project):
        if record["op"] == "replace":
            held = set()
        for m in record["members"]:
            pair = (m["id"], m["email_sha256"])
            held.discard(pair) if record["op"] == "remove" else held.add(pair)
    return held


def held_hashes(project) -> set[str]:
    """A list keyed by the email hash (Microsoft Customer Match): a set of hashes."""
    held: set[str] = set()
    for record in log_records(project):
        if record["op"] == "replace":
            held = set()
        for m in record["members"]:
            held.discard(m["email_sha256"]) if record["op"] == "remove" else held.add(m["email_sha256"])
    return held


class RejectsRemoves(FileDestination):
    """Rejects every remove (the list keeps the identifiers)."""

    def remove_members(self, ref, members):
        return BatchResult(rejected={m.key: "remove refused by the test destination" for m in members})


class HashKeyed(FileDestination):
    required_identifier = "email_sha256"


def run(project, destination, select=("sync_cart",), **kwargs):
    wh = Warehouse.connect(load_profile(project.root, env={}))
    try:
        engine = project.engine(wh, destination, **kwargs)
        engine.destination("file")            # plan with this instance's required_identifier
        return engine.sync_all(engine.project.select(list(select)))
    finally:
        wh.close()


def pending(project) -> list[tuple]:
    return project.sql(f"select member_key, email_sha256 from {table('pending_removals')}")


def test_rejected_removal_of_old_identifiers_is_retried_until_acknowledged(project):
    project.set_audience([member(1), member(2)])
    run(project, FileDestination(project.out))
    old, new = sha("user1@example.com"), sha("new@example.com")
    project.set_audience([member(1, "new@example.com"), member(2)])
    report = run(project, RejectsRemoves(project.out))
    assert report.outcomes[0].rejected == 1 and report.outcomes[0].sent["adds"] == 1
    assert ("c000001", old) in held_pairs(project)            # still on the destination...
    assert pending(project) == [("c000001", old)]             # ...so not forgotten
    assert project.ledger()["c000001"] == (new, None)

    plan = project.plan().outcomes[0].plan
    assert plan["removes"] == 1 and plan["pending_removals"] == 1

    report = run(project, FileDestination(project.out))
    assert report.exit_code == EXIT_OK and report.outcomes[0].sent["removes"] == 1
    ledger_pairs = {(key, ids[0]) for key, ids in project.ledger().items()}
    assert held_pairs(project) == ledger_pairs == {("c000001", new), ("c000002", sha("user2@example.com"))}
    assert pending(project) == []
    assert run(project, FileDestination(project.out)).outcomes[0].requests == 0


def test_readding_old_identifiers_clears_their_pending_removal(project):
    project.set_audience([member(1)])
    run(project, FileDestination(project.out))
    project.set_audience([member(1, "new@example.com")])
    run(project, RejectsRemoves(project.out))
    project.set_audience([member(1)])                         # back to the first address
    report = run(project, FileDestination(project.out))
    assert report.exit_code == EXIT_OK
    assert pending(project) == [] and project.ledger() == project.audience()
    assert held_pairs(project) == {("c000001", sha("user1@example.com"))}


def test_hash_keyed_list_keeps_a_hash_another_member_holds(project):
    shared = "family@example.com"
    project.set_audience([member(1, shared), member(2, shared), member(3)])
    run(project, HashKeyed(project.out))
    assert held_hashes(project) == {sha(shared), sha("user3@example.com")}

    project.set_meta("sync_cart", max_remove_share=0.5)
    project.set_audience([member(2, shared), member(3)])      # c1 leaves, c2 keeps the hash
    report = run(project, HashKeyed(project.out))
    assert report.exit_code == EXIT_OK and report.outcomes[0].sent["removes"] == 0
    assert sha(shared) in held_hashes(project)
    assert set(project.ledger()) == {"c000002", "c000003"}

    project.set_audience([member(3), member(4, shared)])      # c2 leaves while c4 joins with the hash
    run(project, HashKeyed(project.out))
    assert held_hashes(project) == {sha(shared), sha("user3@example.com")}
    assert {ids[0] for ids in project.ledger().values()} == held_hashes(project)

    project.set_audience([member(3)])                         # the last holder leaves: now it goes
    report = run(project, HashKeyed(project.out))
    assert report.outcomes[0].sent["removes"] == 1
    assert held_hashes(project) == {sha("user3@example.com")} == {ids[0] for ids in project.ledger().values()}
    assert run(project, HashKeyed(project.out)).outcomes[0].requests == 0


class Recording(FileDestination):
    def __init__(self, directory, calls):
        super().__init__(directory)
        self.calls = calls

    def add_members(self, ref, members, *, replace=False):
        self.calls.append("audience")
        return super().add_members(ref, members, replace=replace)

    def upsert_people(self, people):
        self.calls.append("people")
        return super().upsert_people(people)

    def send_events(self, events):
        self.calls.append("events")
        return super().send_events(events)


def test_people_then_events_then_audiences_within_one_run(project):
    project.set_audience_range(0, 3)
    project.sql("insert into cio_people values ('c000000', 'a@example.com', 'Ann', 1, true, null)")
    project.sql("insert into cio_events values ('e1', 'c000000', 'order_placed', timestamp '2024-01-01', 1)")
    calls: list[str] = []
    report = run(project, Recording(project.out, calls), select=("sync_cart", "sync_events", "sync_people"))
    assert report.exit_code == EXIT_OK
    assert calls == ["people", "events", "audience"]
    assert [o.sync for o in report.outcomes] == ["sync_people", "sync_events", "sync_cart"]


def test_malformed_rows_are_caught_after_a_clean_sync(project):
    """Each malformed snapshot takes the slow path and is refused before anything is sent."""
    project.set_audience_range(0, 20)
    run(project, FileDestination(project.out))
    sent = len(log_records(project))
    cases = [
        ("insert into aud_cart select customer_id, email_sha256, phone_sha256, audience_name, list_name, "
         "exclusivity_group, entered_at from aud_cart where customer_id = 'c000005'", "duplicate customer_id"),
        ("insert into aud_cart select customer_id, sha256('other'), phone_sha256, audience_name, list_name, "
         "exclusivity_group, entered_at from aud_cart where customer_id = 'c000007'", "duplicate customer_id"),
        ("update aud_cart set email_sha256 = 'NOT-A-HASH' where customer_id = 'c000003'", "email_sha256 that is"),
        ("insert into aud_cart values ('c999999', null, 'abc', 'aud_cart', 'Cart', null, now())", "phone_sha256"),
        (f"insert into aud_cart values (null, '{sha('x')}', null, 'aud_cart', 'Cart', null, now())",
         "NULL customer_id"),
    ]
    for statement, words in cases:
        project.set_audience_range(0, 20)
        project.sql(statement)
        report = run(project, FileDestination(project.out))
        assert report.exit_code == EXIT_CONFIG_ERROR, statement
        assert words in report.outcomes[0].message, (statement, report.outcomes[0].message)
        assert len(log_records(project)) == sent                     # nothing sent
    project.set_audience_range(0, 20)
    assert run(project, FileDestination(project.out)).outcomes[0].requests == 0


def test_old_ledger_gets_fingerprints(project):
    project.set_audience_range(0, 10)
    run(project, FileDestination(project.out))
    project.sql(f"alter table {table('members')} drop column fingerprint")
    report = run(project, FileDestination(project.out))
    assert report.exit_code == EXIT_OK and report.outcomes[0].requests == 0
    assert project.ledger() == project.audience()


def test_a_new_engine_version_refreshes_fingerprints_instead_of_resending(project):
    project.set_audience_range(0, 10)
    run(project, FileDestination(project.out))
    # As if the ledger had been written by another engine version whose hash differed.
    project.sql(f"update {table('settings')} set value = 'older engine' where name = 'fingerprint_engine'")
    project.sql(f"update {table('members')} set fingerprint = fingerprint + 1")
    report = run(project, FileDestination(project.out))
    assert report.exit_code == EXIT_OK and report.outcomes[0].requests == 0
    assert project.ledger() == project.audience()


def test_refused_model_leaves_no_work_table(project):
    project.set_audience([member(1), ("c000002", "NOT-A-HASH", None)])
    assert run(project, FileDestination(project.out)).exit_code == EXIT_CONFIG_ERROR
    assert project.sql("select count(*) from information_schema.tables where table_name like 'diff__%'") == [(0,)]


def test_null_key_is_refused_even_where_the_row_would_be_skipped(project):
    """A list keyed by the email hash skips rows without one, but a NULL key is still an error."""
    project.set_audience_range(0, 10)
    assert run(project, HashKeyed(project.out)).exit_code == EXIT_OK
    sent = len(log_records(project))
    project.sql(f"insert into aud_cart (customer_id, email_sha256, phone_sha256) values (null, null, '{sha('+15550100')}')")
    report = run(project, HashKeyed(project.out))
    assert report.exit_code == EXIT_CONFIG_ERROR and "NULL customer_id" in report.outcomes[0].message
    assert len(log_records(project)) == sent
