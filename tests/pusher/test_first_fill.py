"""A first sync (the ledger holds nothing of the sync) reads its adds straight from the model,
without the fingerprint join and work table: the same members with the same identifiers as the
join path, the same waiting members, the same counts, and a second run that finds nothing to do."""

from __future__ import annotations

from dataclasses import replace

from pusher.errors import EXIT_OK
from pusher.ledger import table
from pusher.plan import make_plan
from pusher.warehouse import Warehouse, load_profile

from .conftest import Project, member, sha


def _audience(project: Project) -> None:
    rows = [member(i) for i in range(40)]
    rows[3] = (rows[3][0], rows[3][1], sha("+15550000003"))          # a phone as well
    rows[7] = (rows[7][0], None, sha("+15550000007"))                 # a phone only
    project.set_audience(rows)


def _join_path_adds(wh: Warehouse, diff) -> list[tuple]:
    """The adds the join path plans for the same model and ledger (work table, hold_for_people)."""
    joined = replace(diff, first_fill=False)
    by_rowid = wh.is_base_table(diff.sync.relation)
    try:
        wh.execute(*joined.stage_fingerprint_diff(by_rowid))
        wh.execute(*joined.build_work(by_rowid))
        if joined.people_sources:
            wh.execute(*joined.hold_for_people())
        return sorted(wh.fetchall(*joined.adds()))
    finally:
        for statement in joined.cleanup():
            wh.execute(statement)


def test_a_first_fill_plans_the_same_adds_as_the_join_path(project):
    _audience(project)
    wh = Warehouse.connect(load_profile(project.root, env={}))
    try:
        engine = project.engine(wh)
        sync = engine.project.select(["sync_cart"])[0]
        plan, diff = make_plan(wh, sync, engine.limits(sync.destination), env=project.env)
        assert diff.first_fill
        first_fill = sorted(wh.fetchall(*diff.adds()))
        assert first_fill == _join_path_adds(wh, diff)
        assert len(first_fill) == plan.adds == 40 and wh.fetchall(*diff.removes()) == []
        assert (plan.removes, plan.waiting, plan.skipped) == (0, 0, 0)
        assert plan.samples["adds"] == [dict(zip(("customer_id", "email_sha256", "phone_sha256"), row[:3]))
                                        for row in first_fill[:5]]
    finally:
        wh.close()


def test_a_first_fill_holds_members_whose_person_is_unknown_as_the_join_path_does(project):
    _audience(project)
    wh = Warehouse.connect(load_profile(project.root, env={}))
    try:
        engine = project.engine(wh)
        wh.execute(f"insert into {table('members')} (sync, member_key) "        # people acknowledged before
                   "select 'sync_people', 'c' || lpad(cast(i as varchar), 6, '0') from range(0, 40, 3) t(i)")
        sync = engine.project.select(["sync_cart"])[0]
        people = engine.project.select(["sync_people"])[0]
        limits = replace(engine.limits(sync.destination), needs_known_people=True)
        plan, diff = make_plan(wh, sync, limits, env=project.env, people_sources=(people,))
        assert diff.first_fill and diff.people_sources
        first_fill = sorted(wh.fetchall(*diff.adds()))
        assert first_fill == _join_path_adds(wh, diff)
        assert [row[0] for row in first_fill] == [f"c{i:06d}" for i in range(0, 40, 3)]
        assert (plan.adds, plan.waiting) == (14, 26)
    finally:
        wh.close()


def test_a_first_sync_fills_the_list_and_the_ledger_and_the_next_run_has_nothing_to_do(project):
    _audience(project)
    first = project.sync()
    assert first.exit_code == EXIT_OK and first.outcomes[0].sent["adds"] == 40
    assert project.listed() == project.audience() == project.ledger()
    again = project.plan().outcomes[0].plan
    assert (again["adds"], again["removes"]) == (0, 0)


def test_spent_rejections_take_the_join_path(project):
    """A member rejected max_row_attempts times is not sent again: the join path knows it."""
    _audience(project)
    project.plan()                          # makes the ledger
    project.sql(f"insert into {table('rejections')} values ('sync_cart', 'c000005', 'add', "
                f"'{member(5)[1]}/', 'refused', 99, 'r0', now())")
    plan = project.plan().outcomes[0].plan
    assert (plan["adds"], plan["exhausted"]) == (39, 1)
