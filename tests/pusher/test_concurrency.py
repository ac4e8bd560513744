"""Several batches in flight: the pipeline's rules on their own, then the engine against the
Customer.io emulator over real HTTP with added latency (removes before adds, each ledger write
after its own acknowledgement, on the main thread), and a 429 storm that must hold every worker."""

from __future__ import annotations

import gc
import threading
import time
from contextlib import ExitStack

import httpx
import pytest
from typer.testing import CliRunner

from pusher import cli

from pusher.destinations.base import ListRef, Member
from pusher.destinations.customerio import CustomerIoDestination
from pusher.emulators.customerio import create_app
from pusher.emulators.options import EmulatorOptions
from pusher.emulators.server import running
from pusher.gc_pause import YOUNG_THRESHOLD
from pusher.http import RateLimiter, RetryPolicy, WindowLimiter
from pusher.ledger import table
from pusher.pipeline import Pipeline
from pusher.warehouse import Warehouse, load_profile

from .conftest import Project

SITE, KEY, APP_KEY = "demo-site", "demo-key", "demo-app-key"
SEGMENT = "CIO__Cart_Abandon_0-1d__NoPurchase"
ADD_ENDPOINT = "POST /api/v1/segments/{segment_id}/add_customers"


# -- the pipeline on its own ---------------------------------------------------------------------

def test_serial_pipeline_sends_and_records_one_after_the_other_on_the_calling_thread():
    log = []
    Pipeline(1).run(iter(range(4)), lambda b: log.append(("send", b, threading.current_thread().name)) or b * 10,
                    lambda b, r: log.append(("record", r, threading.current_thread().name)))
    main = threading.current_thread().name
    assert log == [(step, value, main) for b in range(4) for step, value in (("send", b), ("record", b * 10))]


def test_concurrent_pipeline_bounds_batches_held_and_records_on_the_calling_thread():
    in_flight, most, pulled, recorded = [0], [0], [0], []
    lock = threading.Lock()
    gate = threading.Barrier(3)           # three sends must be in flight together to pass

    def batches():
        for number in range(12):
            pulled[0] += 1
            # At most 3 in flight, plus at most 3 acknowledged that await their ledger write.
            assert pulled[0] - len(recorded) <= 6, "the stream is read ahead of the workers"
            yield number

    def send(number):
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        gate.wait(timeout=10)
        with lock:
            in_flight[0] -= 1
        return number

    def record(number, result):
        assert threading.current_thread() is threading.main_thread()
        recorded.append(result)

    Pipeline(3).run(batches(), send, record)
    assert sorted(recorded) == list(range(12)) and most[0] == 3


def test_freed_workers_send_the_next_batches_before_the_acknowledged_ones_are_recorded():
    """The destination stays busy while the calling thread writes the ledger."""
    later_sent = threading.Event()
    recorded = []

    def send(number):
        if number >= 2:
            later_sent.set()
        return number

    def record(number, result):
        if number == 0:
            # Batch 0's worker is free: batch 2 is already sent while batch 0 is being recorded.
            assert later_sent.wait(timeout=10), "no batch was sent while the ledger was written"
        recorded.append(result)

    Pipeline(2).run(iter(range(6)), send, record)
    assert sorted(recorded) == list(range(6))


def test_a_failed_send_stops_new_batches_and_records_those_acknowledged_first():
    started, recorded = [], []
    failing = threading.Event()

    def send(number):
        started.append(number)
        if number == 2:
            failing.set()
            raise RuntimeError("destination down")
        if number < 2:
            failing.wait(timeout=10)      # acknowledged only after the failure was seen
        return number

    with pytest.raises(RuntimeError, match="destination down"):
        Pipeline(3).run(iter(range(10)), send, lambda number, result: recorded.append(result))
    assert sorted(recorded) == [0, 1]     # in flight when it failed: awaited and recorded
    assert max(started) <= 4              # no batch started once the failure was known


def _one_after_the_other(count):
    """A send for batches 0..count-1 that acknowledges them one at a time, in order."""
    acknowledged = [threading.Event() for _ in range(count)]

    def send(number):
        if number:
            assert acknowledged[number - 1].wait(timeout=10)
        acknowledged[number].set()
        return number
    return send


def test_acknowledged_batches_are_written_in_groups_of_a_quarter_of_the_batches_in_flight():
    """One ledger write per group: its statements and commit cost more than its rows."""
    groups = []
    pipeline = Pipeline(8, max_hold_seconds=60)
    assert pipeline.group_size == 2 and Pipeline(32).group_size == 8 and Pipeline(3).group_size == 1
    pipeline.run(iter(range(11)), _one_after_the_other(11), lambda number, result: None,
                 lambda pairs: groups.append([result for _, result in pairs]))
    assert sorted(result for group in groups for result in group) == list(range(11))
    assert all(len(group) >= 2 for group in groups[:-1]) and len(groups) <= 6


def test_batches_held_for_a_group_are_written_before_a_stream_error_or_a_failed_send_rises():
    recorded = []

    def batches():
        yield from range(3)
        raise KeyboardInterrupt          # Ctrl-C while reading the warehouse

    with pytest.raises(KeyboardInterrupt):
        Pipeline(2, group_size=2, max_hold_seconds=60).run(batches(), _one_after_the_other(3),
                                                            lambda number, result: recorded.append(result))
    # 0 and 1 were acknowledged before the stream was read again: written on the way out, even
    # when a group was not full; 2 may still have been in flight (resent next run).
    assert {0, 1} <= set(recorded) <= {0, 1, 2}

    recorded.clear()
    send = _one_after_the_other(3)

    def failing(number):
        if number == 3:
            raise RuntimeError("destination down")
        return send(number)

    with pytest.raises(RuntimeError, match="destination down"):
        Pipeline(32, max_hold_seconds=60).run(iter(range(4)), failing, lambda number, result: recorded.append(result))
    assert sorted(recorded) == [0, 1, 2]


@pytest.mark.parametrize("in_flight", [1, 3])
def test_collections_are_rarer_while_a_pipeline_runs_and_as_before_after_it_even_after_a_failure(in_flight):
    """Streamed rows hold no cycles: fewer young collections while batches flow (pusher.gc_pause)."""
    before = gc.get_threshold()
    seen = []

    def send(number):
        seen.append(gc.get_threshold())
        if number == 5:
            raise RuntimeError("destination down")
        return number

    Pipeline(in_flight).run(iter(range(4)), send, lambda number, result: seen.append(gc.get_threshold()))
    assert gc.get_threshold() == before
    with pytest.raises(RuntimeError, match="destination down"):
        Pipeline(in_flight).run(iter(range(8)), send, lambda number, result: None)
    assert gc.get_threshold() == before
    assert seen and all(threshold[0] >= YOUNG_THRESHOLD > before[0] and threshold[1:] == before[1:]
                        for threshold in seen)


@pytest.mark.parametrize("make_limiter", [lambda **timing: RateLimiter(0, **timing),
                                          lambda **timing: WindowLimiter(10, 1.0, **timing)],
                         ids=["even", "window"])
def test_a_pause_holds_the_other_threads_but_not_the_one_that_slept_it(make_limiter):
    now = [100.0]
    slept: dict[str, list[float]] = {"A": [], "B": []}
    names = threading.local()
    limiter = make_limiter(clock=lambda: now[0], sleep=lambda s: slept[names.name].append(round(s, 3)))

    def thread_a():
        names.name = "A"
        limiter.pause(2.0)                 # A got the 429 and sleeps the 2 s itself (its retry policy)
        with limiter.slot():               # then goes first, alone: the others wait for its answer
            pass

    def thread_b():
        names.name = "B"
        limiter.wait()

    for target in (thread_a, thread_b):
        worker = threading.Thread(target=target)
        worker.start()
        worker.join()
    assert slept == {"A": [], "B": [2.0]}


class FakeTime:
    """A clock that only moves when a thread sleeps (by `late` more than asked, once per entry)."""

    def __init__(self, now: float = 0.0):
        self.now, self.late = now, []
        self.lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now = round(self.now + seconds + (self.late.pop(0) if self.late else 0.0), 6)


def _starts(limiter: RateLimiter, fake: FakeTime, count: int) -> list[float]:
    starts = []
    for _ in range(count):
        limiter.wait()
        starts.append(fake.now)
    return starts


def _most_in_a_second(starts: list[float]) -> int:
    return max(sum(1 for t in starts if edge - 1.0 < t <= edge) for edge in starts)


def test_starts_are_evenly_spaced_after_at_most_a_pair():
    fake = FakeTime(100.0)
    limiter = RateLimiter(4, clock=fake.clock, sleep=fake.sleep)
    assert _starts(limiter, fake, 7) == [100.0, 100.0, 100.25, 100.5, 100.75, 101.0, 101.25]


def test_idle_time_builds_no_credit_beyond_a_pair():
    fake = FakeTime()
    limiter = RateLimiter(4, clock=fake.clock, sleep=fake.sleep)
    limiter.wait()
    fake.now = 10.0                          # nothing sent for 10 s
    assert _starts(limiter, fake, 4) == [10.0, 10.0, 10.25, 10.5]


def test_a_start_woken_late_is_caught_up_without_going_over_the_rate():
    fake = FakeTime()
    limiter = RateLimiter(4, clock=fake.clock, sleep=fake.sleep)
    fake.late = [0.2]                        # the thread of the start due at 0.25 wakes 0.2 s late
    starts = _starts(limiter, fake, 8)
    assert starts == [0.0, 0.0, 0.45, 0.5, 0.75, 1.0, 1.25, 1.5]   # the later ones keep the schedule
    assert _most_in_a_second(starts) <= 4 + 2


def test_a_start_much_later_restarts_the_schedule_with_no_burst_beyond_a_pair():
    fake = FakeTime()
    limiter = RateLimiter(4, clock=fake.clock, sleep=fake.sleep)
    fake.late = [0.6]
    starts = _starts(limiter, fake, 6)
    assert starts == [0.0, 0.0, 0.85, 0.85, 1.1, 1.35]
    assert _most_in_a_second(starts) <= 4 + 2


def test_threads_woken_late_do_not_bunch_over_the_rate_in_any_second():
    """At 3 requests/s, C's thread is woken late (at 0.99) while D waits for its turn: D may
    catch up at once, E is back on schedule, and no second holds more than 3 + 2 starts."""
    fake = FakeTime()
    asleep, late = threading.Event(), threading.Event()
    starts: list[float] = []

    def sleep(seconds):
        if threading.current_thread().name == "C" and not late.is_set():
            asleep.set()
            late.wait(timeout=10)            # asleep until the test wakes it, late
        else:
            fake.sleep(seconds)

    limiter = RateLimiter(3, clock=fake.clock, sleep=sleep)

    def one():
        limiter.wait()
        with fake.lock:
            starts.append(fake.now)

    one()                                    # A, at 0
    one()                                    # B, at 0
    c = threading.Thread(target=one, name="C")
    c.start()
    assert asleep.wait(timeout=10)
    d = threading.Thread(target=one, name="D")
    d.start()                                # queues behind C for its turn
    with fake.lock:
        fake.now = 0.99
    late.set()
    for thread in (c, d):
        thread.join(timeout=10)
    one()                                    # E
    assert starts == [0.0, 0.0, 0.99, 0.99, round(0.99 + 1 / 3, 6)]
    assert _most_in_a_second(starts) <= 3 + 2


def test_a_pause_begun_while_a_thread_waits_for_its_turn_holds_it_too():
    fake = FakeTime()
    paused = []

    def sleep(seconds):
        if not paused:
            # While this thread sleeps towards its start at 0.5, another worker is answered
            # 429 with Retry-After: 3 and pauses the limiter.
            other = threading.Thread(target=limiter.pause, args=(3.0,))
            other.start()
            other.join()
            paused.append(True)
        fake.sleep(seconds)

    limiter = RateLimiter(2, clock=fake.clock, sleep=sleep)
    limiter.wait()
    limiter.wait()                                # the pair at 0, without sleeping
    limiter.wait()
    assert fake.now == 3.0


# -- the engine against the Customer.io emulator -------------------------------------------------

class Recording(CustomerIoDestination):
    """The real destination, noting when each membership call started and was acknowledged."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[str, float, float]] = []
        self.acknowledged: set[str] = set()
        self.in_flight = self.most_in_flight = 0
        self._guard = threading.Lock()

    def _timed(self, op, call, keys):
        with self._guard:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        start = time.monotonic()
        try:
            result = call()
        finally:
            with self._guard:
                self.in_flight -= 1
        with self._guard:
            self.calls.append((op, start, time.monotonic()))
            self.acknowledged.update(f"{op}:{key}" for key in result.accepted)
        return result

    def add_members(self, ref, members, *, replace=False):
        return self._timed("add", lambda: super(Recording, self).add_members(ref, members, replace=replace),
                           [m.key for m in members])

    def remove_members(self, ref, members):
        return self._timed("remove", lambda: super(Recording, self).remove_members(ref, members),
                           [m.key for m in members])

    def upsert_people(self, people):
        return self._timed("update", lambda: super(Recording, self).upsert_people(people), [p.key for p in people])

    def send_events(self, events):
        return self._timed("event", lambda: super(Recording, self).send_events(events), [e.key for e in events])


@pytest.fixture
def cio(tmp_path):
    with ExitStack() as stack:
        app = create_app(EmulatorOptions(latency_ms=30), env={})
        url = stack.enter_context(running(app))
        yield url, app


def _sync(project: Project, destination, select: list[str]):
    """One run, with every ledger write checked: on the main thread, after its own acknowledgement."""
    wh = Warehouse.connect(load_profile(project.root, env={}))
    try:
        engine = project.engine(wh, destination)
        write = engine.ledger.record_batch

        def checked_one(op, acknowledged):
            assert threading.current_thread() is threading.main_thread()
            if op in ("remove", "add", "update", "event"):
                unacknowledged = [row.member_key for row in acknowledged
                                  if f"{op}:{row.member_key}" not in destination.acknowledged]
                assert not unacknowledged, (op, unacknowledged[:3])

        def checked(run_id, sync, batch_no, op, sent, acknowledged, rejected, replaces_rows=True):
            checked_one(op, acknowledged)
            return write(run_id, sync, batch_no, op, sent, acknowledged, rejected, replaces_rows=replaces_rows)

        engine.ledger.record_batch = checked
        write_group = engine.ledger.record_batches

        def checked_group(run_id, sync, op, batches, replaces_rows=True):
            for batch in batches:
                checked_one(op, batch.acknowledged)
            return write_group(run_id, sync, op, batches, replaces_rows=replaces_rows)

        engine.ledger.record_batches = checked_group
        return engine.sync_all(engine.project.select(select))
    finally:
        wh.close()


def test_concurrent_sync_keeps_every_promise_against_the_emulator(tmp_path, cio):
    url, app = cio
    project = Project(tmp_path)
    project.env.update(PUSHER_BATCH_SIZE="100")
    project.set_meta("sync_cart", destination="customerio", list_name=SEGMENT)
    project.set_meta("sync_people", destination="customerio")
    project.set_meta("sync_events", destination="customerio")
    project.set_audience_range(0, 3000)
    project.sql("insert into cio_people select 'c' || lpad(cast(i as varchar), 6, '0'), null, 'Name' || i, i, "
                "i % 2 = 0, null from range(0, 3300) t(i)")
    project.sql("insert into cio_events select 'e' || i, 'c' || lpad(cast(i as varchar), 6, '0'), 'order_placed', "
                "timestamp '2024-01-01', 10 from range(0, 1000) t(i)")

    def destination():
        return Recording(SITE, KEY, APP_KEY, track_url=url, app_url=url, requests_per_second=500,
                         max_in_flight=8, retry=RetryPolicy(base_delay=0.01, max_delay=0.05))

    first = destination()
    report = _sync(project, first, ["sync_people", "sync_events", "sync_cart"])
    first.close()
    assert report.exit_code == 0, report.to_dict()
    assert first.most_in_flight > 1
    state = app.workspace.inspect()
    assert len(state["people"]) == 3300 and sum(len(p["events"]) for p in state["people"].values()) == 1000

    # Churn: 10% leave, 10% join, 10% change email (a remove and an add of the same key).
    project.sql("delete from aud_cart where customer_id < 'c000300'")
    project.sql("insert into aud_cart select 'c' || lpad(cast(i as varchar), 6, '0'), sha256('j' || i), null, "
                "'aud_cart', 'Cart', null, timestamp '2024-01-01' from range(3000, 3300) t(i)")
    project.sql("update aud_cart set email_sha256 = sha256(email_sha256) where customer_id between 'c000300' and 'c000599'")
    second = destination()
    report = _sync(project, second, ["sync_cart"])
    second.close()
    outcome = report.outcomes[0]
    assert report.exit_code == 0, report.to_dict()
    assert outcome.sent["removes"] == 600 and outcome.sent["adds"] == 600
    removes = [call for call in second.calls if call[0] == "remove"]
    adds = [call for call in second.calls if call[0] == "add"]
    assert max(end for _, _, end in removes) <= min(start for _, start, _ in adds), "an add went before a remove"
    assert second.most_in_flight > 1

    segment = next(s for s in app.workspace.inspect()["segments"].values() if s["name"] == SEGMENT)
    assert set(segment["members"]) == set(project.audience()) == set(project.ledger())
    run_id = report.run_id
    numbers = [row[0] for row in project.sql(f"select batch_no from {table('batches')} where run_id = ? "
                                             "and op <> 'adopt' order by batch_no", [run_id])]
    assert numbers == list(range(1, outcome.batches + 1)) and outcome.batches == 12


def _ledger_tables(project: Project) -> dict[str, list[tuple]]:
    """The sync's whole ledger but run ids and times: members, owed removals, rejections, batches."""
    columns = {"members": "member_key, email_sha256, phone_sha256, payload_hash, payload_json, fingerprint",
               "pending_removals": "member_key, email_sha256, phone_sha256, fingerprint",
               "rejections": "member_key, op, fingerprint, reason, attempts",
               "batches": "op, row_count, accepted, rejected"}
    return {name: sorted(project.sql(f"select {selected} from {table(name)} where sync = 'sync_cart'"), key=repr)
            for name, selected in columns.items()}


def test_a_concurrent_first_sync_leaves_the_ledger_a_serial_one_leaves(tmp_path):
    """The same audience, one batch at a time and 8 in flight, each against its own emulator: a
    first sync with a rejected row (an id longer than Customer.io takes), then churn with changed
    emails, leave the same ledger."""
    ledgers = {}
    for in_flight in (1, 8):
        (tmp_path / f"in-flight-{in_flight}").mkdir()
        project = Project(tmp_path / f"in-flight-{in_flight}")
        project.env.update(PUSHER_BATCH_SIZE="100")
        project.set_meta("sync_cart", destination="customerio", list_name=SEGMENT)
        project.set_audience_range(0, 2000)
        project.sql("insert into aud_cart values ('c' || repeat('9', 200), sha256('long'), null, 'aud_cart', 'Cart', "
                    "null, timestamp '2024-01-01')")
        snapshots = []
        with running(create_app(EmulatorOptions(latency_ms=20), env={})) as url:
            for step in ("first sync", "churn"):
                if step == "churn":
                    project.sql("delete from aud_cart where customer_id < 'c000100'")
                    project.sql("update aud_cart set email_sha256 = sha256(email_sha256) "
                                "where customer_id between 'c000500' and 'c000649'")
                destination = Recording(SITE, KEY, APP_KEY, track_url=url, app_url=url, requests_per_second=1000,
                                        max_in_flight=in_flight, retry=RetryPolicy(base_delay=0.01, max_delay=0.05))
                report = _sync(project, destination, ["sync_cart"])
                destination.close()
                assert report.outcomes[0].rejected == 1, report.to_dict()
                assert destination.most_in_flight == 1 if in_flight == 1 else destination.most_in_flight > 1
                snapshots.append(_ledger_tables(project))
        ledgers[in_flight] = snapshots
    assert ledgers[8] == ledgers[1]
    first, churned = ledgers[1]
    assert len(first["members"]) == 2000 and [row[4] for row in first["rejections"]] == [1]
    assert len(churned["members"]) == 1900 and [row[4] for row in churned["rejections"]] == [2]
    assert len(churned["pending_removals"]) == 0


@pytest.mark.parametrize("pacing", ["even", "window"])
def test_a_429_storm_holds_every_worker(tmp_path, pacing):
    """The emulator admits 10 requests a second and answers Retry-After: 1. Four workers limited
    to 40/s, evenly or by the window: the first 429 holds
    them all, so each second costs about one 429, not one per worker, and no request arrives
    while the pause lasts."""
    app = create_app(EmulatorOptions(rate_limit=10), retry_after="1", env={})
    with running(app) as url:
        destination = CustomerIoDestination(SITE, KEY, APP_KEY, track_url=url, app_url=url,
                                            requests_per_second=40, max_in_flight=4, pacing=pacing)
        ref = ListRef(SEGMENT, destination.ensure_list(ListRef(SEGMENT)))
        samples: list[tuple[float, int, int]] = []
        stop = threading.Event()

        def sample():
            with httpx.Client(base_url=url) as client:
                while not stop.is_set():
                    counts = client.get("/_emulator/stats").json()["requests"].get(ADD_ENDPOINT, {})
                    samples.append((time.monotonic(), sum(counts.values()), counts.get("429", 0)))
                    time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            batches = [[Member(f"c{i}") for i in range(n, n + 10)] for n in range(0, 400, 10)]
            acknowledged = []
            Pipeline(destination.max_in_flight).run(iter(batches), lambda batch: destination.add_members(ref, batch),
                                                    lambda batch, result: acknowledged.extend(result.accepted))
        finally:
            stop.set()
            sampler.join()
            destination.close()
        with httpx.Client(base_url=url) as client:
            counts = client.get("/_emulator/stats").json()["requests"][ADD_ENDPOINT]
    assert len(acknowledged) == 400
    total, throttled = sum(counts.values()), counts.get("429", 0)
    # 40 requests through a 10/s window: about 4 storms. Each costs one 429 when every worker
    # holds, about four (one per worker) when only the answered worker waits.
    assert total - throttled >= 40
    assert throttled <= 7, f"{throttled} answers 429: the pause did not hold the other workers"
    first_429 = next(t for t, _, n in samples if n)
    during = [count for t, count, _ in samples if first_429 + 0.15 <= t <= first_429 + 0.8]
    assert during and max(during) - min(during) <= 1, "requests kept arriving while the destination was paused"


def test_a_first_sync_looks_its_segment_up_while_the_plan_runs(tmp_path, cio):
    """The segment lookup (a read) starts before the plan and is the only one: the size guard and
    the create reuse its answer; the segment is then created once and the ledger filled."""
    url, app = cio
    project = Project(tmp_path)
    project.set_meta("sync_cart", destination="customerio", list_name=SEGMENT)
    project.set_audience_range(0, 50)
    order: list[str] = []
    looked_up: list[str] = []

    class Noting(CustomerIoDestination):
        def look_up_list(self, ref):
            looked_up.append(ref.name)          # on the look-ahead thread
            super().look_up_list(ref)

    destination = Noting(SITE, KEY, APP_KEY, track_url=url, app_url=url)
    wh = Warehouse.connect(load_profile(project.root, env={}))
    try:
        engine = project.engine(wh, destination)
        plan, look_ahead = engine.plan, engine._look_up_new_list
        engine.plan = lambda *args, **kwargs: (plan(*args, **kwargs), order.append("planned"))[0]
        engine._look_up_new_list = lambda sync: (look_ahead(sync), order.append("look-ahead started"))[0]
        report = engine.sync_all(engine.project.select(["sync_cart"]))
    finally:
        wh.close()
        destination.close()
    assert report.exit_code == 0, report.to_dict()
    assert order == ["look-ahead started", "planned"] and looked_up == [SEGMENT]
    with httpx.Client(base_url=url) as client:
        counts = client.get("/_emulator/stats").json()["requests"]
    assert counts["GET /v1/segments"] == {"200": 1} and counts["POST /v1/segments"] == {"200": 1}
    assert [s["name"] for s in app.workspace.inspect()["segments"].values()].count(SEGMENT) == 1
    assert sorted(project.ledger()) == sorted(project.audience()) and len(project.ledger()) == 50


def test_a_first_run_looks_its_segment_up_before_the_warehouse_opens(tmp_path, cio, monkeypatch):
    """No state file yet (a first run): `pusher sync` builds the destination and starts the
    segment's lookup and creation before it opens the warehouse, and the sync reuses them. With a
    state file, the warehouse opens first (the ledger says which lists are new)."""
    url, app = cio
    project = Project(tmp_path)
    project.set_meta("sync_cart", destination="customerio", list_name=SEGMENT)
    project.set_audience_range(0, 50)
    project.lose_ledger()                   # the helpers above made an empty state file
    for name, value in {"CUSTOMERIO_SITE_ID": SITE, "CUSTOMERIO_API_KEY": KEY, "CUSTOMERIO_APP_API_KEY": APP_KEY,
                        "CUSTOMERIO_TRACK_URL": url, "CUSTOMERIO_APP_URL": url}.items():
        monkeypatch.setenv(name, value)
    for name in ("DBT_TARGET", "DBT_PROFILES_DIR", "DBT_TARGET_PATH", "PUSHER_STATE_PATH"):
        monkeypatch.delenv(name, raising=False)
    seen_at_connect: list[tuple[int, int]] = []
    connect = Warehouse.connect.__func__

    def connect_once_the_lookup_arrived(cls, *args, **kwargs):
        deadline = time.monotonic() + 3
        while True:     # the look-ahead runs on another thread: give it its round trips, not more
            with httpx.Client(base_url=url) as client:
                counts = client.get("/_emulator/stats").json()["requests"]
            seen = tuple(counts.get(f"{method} /v1/segments", {}).get("200", 0) for method in ("GET", "POST"))
            if seen[1] or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        seen_at_connect.append(seen)
        return connect(cls, *args, **kwargs)

    monkeypatch.setattr(Warehouse, "connect", classmethod(connect_once_the_lookup_arrived))
    runner = CliRunner()
    done = runner.invoke(cli.app, ["sync", "--select", "sync_cart", "--json", "--project-dir", str(project.root)])
    assert done.exit_code == 0, done.output
    assert seen_at_connect == [(1, 1)], "the segment was looked up and created before the warehouse opened"
    with httpx.Client(base_url=url) as client:
        counts = client.get("/_emulator/stats").json()["requests"]
    assert counts["GET /v1/segments"] == {"200": 1} and counts["POST /v1/segments"] == {"200": 1}
    assert [s["name"] for s in app.workspace.inspect()["segments"].values()].count(SEGMENT) == 1
    assert sorted(project.ledger()) == sorted(project.audience()) and len(project.ledger()) == 50
    # The state file exists now: a run whose ledger knows the segment looks nothing up.
    project.set_audience_range(0, 60)
    done = runner.invoke(cli.app, ["sync", "--select", "sync_cart", "--json", "--project-dir", str(project.root)])
    assert done.exit_code == 0, done.output
    assert seen_at_connect == [(1, 1), (1, 1)]
    with httpx.Client(base_url=url) as client:
        counts = client.get("/_emulator/stats").json()["requests"]
    assert counts["GET /v1/segments"] == {"200": 1} and len(project.ledger()) == 60


def test_a_look_up_that_failed_is_made_again_by_the_sync(tmp_path, cio):
    """The look-ahead finds the App API refusing (a wrong key); the sync's own lookup reports it."""
    url, _ = cio
    project = Project(tmp_path)
    project.set_meta("sync_cart", destination="customerio", list_name=SEGMENT)
    project.set_audience_range(0, 5)
    destination = CustomerIoDestination(SITE, KEY, "wrong-app-key", track_url=url, app_url=url)
    wh = Warehouse.connect(load_profile(project.root, env={}))
    try:
        engine = project.engine(wh, destination)
        report = engine.sync_all(engine.project.select(["sync_cart"]))
    finally:
        wh.close()
        destination.close()
    outcome = report.outcomes[0]
    assert outcome.status == "config_error" and "CUSTOMERIO_APP_API_KEY" in outcome.message
    assert not project.ledger()


def test_whole_batches_and_a_partly_rejected_one_are_recorded_exactly(tmp_path, cio):
    """A first sync over HTTP: batches accepted whole are recorded from their columns, the batch
    with a rejected id row by row; both leave exactly the model's rows and the warehouse's
    fingerprints of them. Emails are missing in some rows, phones in most, and one key holds the
    character that joins a column's values (that column goes to the warehouse as a list)."""
    url, app = cio
    project = Project(tmp_path)
    project.env.update(PUSHER_BATCH_SIZE="100")
    project.set_meta("sync_cart", destination="customerio", list_name=SEGMENT)
    project.set_audience_range(0, 450)
    # Phones, and members without an email, among the first 200 only: later batches have no phone.
    project.sql("update aud_cart set phone_sha256 = sha256(customer_id) where customer_id like '%3' "
                "and customer_id < 'c000200'")
    project.sql("update aud_cart set email_sha256 = null, phone_sha256 = sha256('p' || customer_id) "
                "where customer_id like '%7' and customer_id < 'c000200'")
    project.sql("update aud_cart set customer_id = 'c000205' || chr(31) || 'x' where customer_id = 'c000205'")
    project.sql("update aud_cart set customer_id = 'c000123' || repeat('9', 200) where customer_id = 'c000123'")
    destination = Recording(SITE, KEY, APP_KEY, track_url=url, app_url=url, requests_per_second=1000,
                            max_in_flight=4, retry=RetryPolicy(base_delay=0.01, max_delay=0.05))
    report = _sync(project, destination, ["sync_cart"])
    destination.close()
    outcome = report.outcomes[0]
    assert (outcome.sent["adds"], outcome.rejected, outcome.batches) == (449, 1, 5), report.to_dict()

    long_key = "c000123" + "9" * 200
    expected = {key: row for key, row in project.audience().items() if key != long_key}
    assert project.ledger() == expected
    assert "c000205\x1fx" in expected and sum(email is None for email, _ in expected.values()) == 20
    assert project.sql(f"select count(*) from {table('members')} as m join aud_cart as a on m.member_key = "
                       "a.customer_id and m.fingerprint = cast(hash(a.customer_id, a.email_sha256, a.phone_sha256) "
                       ">> 1 as bigint) where m.sync = 'sync_cart'") == [(449,)]
    email, phone = project.audience()[long_key]
    assert project.sql(f"select member_key, op, fingerprint, attempts from {table('rejections')}") == [
        (long_key, "add", f"{email}/{phone}", 1)]
    batches = project.sql(f"select row_count, accepted, rejected from {table('batches')} where run_id = ?",
                          [report.run_id])
    assert sorted(rejected for _, _, rejected in batches) == [0, 0, 0, 0, 1]
    assert all(accepted + rejected == rows for rows, accepted, rejected in batches)
