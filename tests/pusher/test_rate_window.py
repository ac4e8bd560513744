"""The Track API's window limiter (pusher.http.WindowLimiter) on a fake clock, and a real sync
through it against the emulator's strict sliding second. A request holds the limiter's slot from
its start to its end; the window counts from the ends."""

from __future__ import annotations

import random
import threading
import time

import httpx
import pytest

from pusher.destinations.customerio import CustomerIoDestination, track_limiter
from pusher.emulators.customerio import create_app
from pusher.emulators.options import EmulatorOptions
from pusher.emulators.server import running
from pusher.errors import ConfigError
from pusher.http import RateLimiter, WindowLimiter
from pusher.warehouse import Warehouse, load_profile

from .conftest import Project

SITE, KEY, APP_KEY = "demo-site", "demo-key", "demo-app-key"
SEGMENT = "CIO__Cart_Abandon_0-1d__NoPurchase"
ADD_ENDPOINT = "POST /api/v1/segments/{segment_id}/add_customers"


class FakeTime:
    """A clock that moves only when a thread sleeps (by `late` more than asked, once per entry),
    or when the test moves it. Each thread's last reading is kept: the time its start was let go."""

    def __init__(self, now: float = 0.0):
        self.now, self.late = now, []
        self.lock = threading.Lock()
        self.seen = threading.local()

    def clock(self) -> float:
        with self.lock:
            self.seen.now = self.now
            return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now = round(self.now + seconds + (self.late.pop(0) if self.late else 0.0), 9)


def _starts(limiter, fake: FakeTime, count: int) -> list[float]:
    """`count` requests one after another, each answered at once (no time passes in flight)."""
    starts = []
    for _ in range(count):
        with limiter.slot():
            starts.append(fake.seen.now)
    return starts


def _most_in_a_window(starts: list[float], window: float) -> int:
    ordered = sorted(starts)
    return max(sum(1 for t in ordered if start <= t < start + window - 1e-9) for start in ordered)


def test_a_sync_of_one_window_goes_at_once_and_the_next_windows_follow():
    """250 requests at 100 per 1.05 s, answered at once: 100 at once, 100 a window later, then 50.
    (Even pacing spreads the first 100 over 0.99 s.)"""
    fake = FakeTime()
    limiter = WindowLimiter(100, 1.05, clock=fake.clock, sleep=fake.sleep)
    assert _starts(limiter, fake, 250) == [0.0] * 100 + [1.05] * 100 + [2.1] * 50


def test_a_peak_rate_spaces_the_window_s_starts_without_changing_its_count():
    """100 per 1.05 s at a peak of 125/s: the first 100 starts 8 ms apart (0.79 s, where even
    pacing takes 1.04 s), the 101st a window after the first."""
    fake = FakeTime()
    limiter = WindowLimiter.for_rate(100, 0.05, peak=125, clock=fake.clock, sleep=fake.sleep)
    starts = _starts(limiter, fake, 101)
    assert [round(t, 6) for t in starts] == [round(i * 0.008, 6) for i in range(100)] + [1.05]


def test_for_rate_counts_the_documented_second_plus_the_allowance():
    assert (lambda w: (w.limit, w.window))(WindowLimiter.for_rate(100, 0.05)) == (100, 1.05)
    assert (lambda w: (w.limit, round(w.window, 6)))(WindowLimiter.for_rate(95.5, 0)) == (95, round(95 / 95.5, 6))
    assert (lambda w: (w.limit, w.window))(WindowLimiter.for_rate(0.5, 0.05)) == (1, 2.05)
    assert WindowLimiter.for_rate(100, 0.05, peak=125).spacing == 0.008
    for bad in ((0, 0.05), (10, -0.1), (10, 0.05, 0)):
        with pytest.raises(ValueError):
            WindowLimiter.for_rate(*bad)


def test_a_start_woken_late_is_caught_up_within_the_window():
    """4 per second, one start a quarter second apart, and the thread of the start due at 1.0
    wakes 0.6 s late: the starts queued behind it go with it, and the one after is back on
    schedule. No start is lost and no second holds more than 4."""
    fake = FakeTime()
    limiter = WindowLimiter(4, 1.0, clock=fake.clock, sleep=fake.sleep)
    starts = []
    for when in (0.0, 0.25, 0.5, 0.75):
        fake.now = when
        starts += _starts(limiter, fake, 1)
    fake.late = [0.6]
    starts += _starts(limiter, fake, 4)
    assert starts == [0.0, 0.25, 0.5, 0.75, 1.6, 1.6, 1.6, 1.75]
    assert _most_in_a_window(starts, 1.0) == 4


def _ends_anchor_the_window(requests: list[tuple[float, float]], limit: int, window: float) -> bool:
    """Each start at least `window` after the end of the request `limit` starts before it."""
    ordered = sorted(requests)
    return all(later[0] >= earlier[1] + window - 1e-9 for earlier, later in zip(ordered, ordered[limit:]))


def test_no_window_of_the_service_holds_more_than_the_limit_however_requests_lag():
    """Threads of random number take turns at random (a yield after every sleep), wake late at
    random, spend a random time in flight (up to a window and a half), idle at random between
    requests, and now and then get a 429 and pause everyone. The service counts each request at
    a random moment between its start and its end. In every run, no span of `window` of the
    service's clock holds more than `limit` requests, every request is made, and each start
    waits for the end of the request `limit` starts before it. A window of starts fails this:
    requests started a window apart are counted closer together when the first lags."""
    for seed in range(40):
        rng = random.Random(seed)
        limit, window = rng.randint(1, 8), rng.choice([0.5, 1.0, 1.05, 2.0])
        spacing = rng.choice([0.0, 0.0, window / limit / 1.25])
        threads, per_thread = rng.randint(2, 6), rng.randint(5, 25)
        fake = FakeTime()
        draws = threading.Lock()

        def draw(pick):
            with draws:
                return pick(rng)

        def sleep(seconds):
            fake.sleep(seconds + draw(lambda r: r.choice([0.0, 0.0, r.uniform(0, window)])))
            time.sleep(0)                 # let another thread in

        limiter = WindowLimiter(limit, window, clock=fake.clock, sleep=sleep, spacing=spacing)
        requests: list[tuple[float, float]] = []
        counted: list[float] = []

        def worker():
            for _ in range(per_thread):
                with limiter.slot():
                    started = fake.seen.now
                    sleep(draw(lambda r: r.choice([0.0, r.uniform(0, 1.5 * window)])))   # in flight
                    ended = fake.clock()
                with draws:
                    requests.append((started, ended))
                    counted.append(rng.uniform(started, ended))
                if draw(lambda r: r.random() < 0.05):          # answered 429: hold everyone
                    pause = draw(lambda r: r.uniform(0, 2 * window))
                    limiter.pause(pause)
                    sleep(pause)
                elif draw(lambda r: r.random() < 0.3):         # idle before the next request
                    sleep(draw(lambda r: r.uniform(0, window)))

        pool = [threading.Thread(target=worker) for _ in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join(timeout=30)
        assert len(requests) == threads * per_thread, seed
        assert _ends_anchor_the_window(requests, limit, window), (seed, limit, window, sorted(requests))
        assert _most_in_a_window(counted, window) <= limit, (seed, limit, window, sorted(counted))
        ordered = sorted(started for started, _ in requests)
        assert all(b - a >= spacing - 1e-9 for a, b in zip(ordered, ordered[1:])), (seed, spacing, ordered)


def test_a_start_waits_for_the_request_a_window_back_to_end():
    """2 per second: A and B start at 0, B is answered at 0.1, A is still in flight at 1.0. C
    waits for A's answer (at 1.4) and goes a window after it, at 2.4, not at 1.0; D, queued
    behind C, goes with it (B ended more than a window before)."""
    fake = FakeTime()
    polling, answered = threading.Event(), threading.Event()

    def sleep(seconds):
        if not answered.is_set():
            polling.set()                    # C looks again while A is in flight
            assert answered.wait(timeout=10)
        fake.sleep(seconds)

    limiter = WindowLimiter(2, 1.0, clock=fake.clock, sleep=sleep)
    a, b = limiter.wait(), limiter.wait()
    fake.now = 0.1
    limiter.done(b)
    fake.now = 1.0
    started: dict[str, float] = {}

    def one(name):
        limiter.wait()
        started[name] = fake.seen.now

    c = threading.Thread(target=one, args=("C",))
    c.start()
    assert polling.wait(timeout=10)
    fake.now = 1.4
    limiter.done(a)
    answered.set()
    c.join(timeout=10)
    one("D")
    assert started == {"C": 2.4, "D": 2.4}


def test_a_thread_woken_late_keeps_its_turn():
    """2 per second: C's thread waits for the start free at 1.0 and is woken late (at 1.3) while
    D waits for its turn: D goes after C (not at 1.0 on its own), E a window after C."""
    fake = FakeTime()
    asleep, late = threading.Event(), threading.Event()
    starts: dict[str, float] = {}

    def sleep(seconds):
        if threading.current_thread().name == "C" and not late.is_set():
            asleep.set()
            late.wait(timeout=10)            # asleep until the test wakes it, late
        else:
            fake.sleep(seconds)

    limiter = WindowLimiter(2, 1.0, clock=fake.clock, sleep=sleep)

    def one():
        with limiter.slot():
            starts[threading.current_thread().name] = fake.seen.now

    for name in ("A", "B"):
        thread = threading.Thread(target=one, name=name)
        thread.start()
        thread.join()
    c = threading.Thread(target=one, name="C")
    c.start()
    assert asleep.wait(timeout=10)
    d = threading.Thread(target=one, name="D")
    d.start()                                # queues behind C for its turn
    with fake.lock:
        fake.now = 1.3
    late.set()
    for thread in (c, d):
        thread.join(timeout=10)
    e = threading.Thread(target=one, name="E")
    e.start()
    e.join()
    assert starts == {"A": 0.0, "B": 0.0, "C": 1.3, "D": 1.3, "E": 2.3}


def test_a_pause_begun_while_a_thread_waits_for_the_window_holds_it_too():
    fake = FakeTime()
    paused = []

    def sleep(seconds):
        if not paused:
            # While this thread sleeps towards the window's next start at 1.0, another worker is
            # answered 429 with Retry-After: 3 and pauses the limiter.
            other = threading.Thread(target=limiter.pause, args=(3.0,))
            other.start()
            other.join()
            paused.append(True)
        fake.sleep(seconds)

    limiter = WindowLimiter(2, 1.0, clock=fake.clock, sleep=sleep)
    assert _starts(limiter, fake, 3) == [0.0, 0.0, 3.0]


@pytest.mark.parametrize("make_limiter", [lambda **timing: WindowLimiter(10, 1.0, **timing),
                                          lambda **timing: RateLimiter(10, **timing)], ids=["window", "even"])
def test_after_a_pause_one_request_goes_alone_until_it_is_answered(make_limiter):
    """A 429 paused everyone until 1.0. The first request after it goes alone; B, free by the
    rate at 1.0, waits for that request's answer (at 1.3), so a service still refusing answers
    one request 429, not every worker's."""
    fake = FakeTime()
    polling, answered = threading.Event(), threading.Event()

    def sleep(seconds):
        if fake.now >= 1.0 and not answered.is_set():
            polling.set()                    # B looks again while the lone request is in flight
            assert answered.wait(timeout=10)
        fake.sleep(seconds)

    limiter = make_limiter(clock=fake.clock, sleep=sleep)
    limiter.pause(1.0)                       # this thread was answered 429 and sleeps it itself
    fake.now = 1.0
    alone = limiter.wait()
    started = []
    b = threading.Thread(target=lambda: started.append((limiter.wait(), fake.seen.now)[1]))
    b.start()
    assert polling.wait(timeout=10)
    fake.now = 1.3
    limiter.done(alone)
    answered.set()
    b.join(timeout=10)
    assert alone.at == 1.0 and started and 1.3 <= started[0] <= 1.3 + limiter.POLL_SECONDS + 1e-9


def test_the_even_pacing_switch_spaces_the_same_count_evenly():
    fake = FakeTime()
    even = track_limiter(100, 0.05, "even", clock=fake.clock, sleep=fake.sleep)
    assert isinstance(even, RateLimiter)
    starts = _starts(even, fake, 6)
    assert [round(t, 6) for t in starts] == [0.0, 0.0, 0.0105, 0.021, 0.0315, 0.042]   # 1.05 s / 100
    fake = FakeTime()
    window = track_limiter(100, None, "window", clock=fake.clock, sleep=fake.sleep)
    assert (window.limit, window.window, window.spacing) == (100, 1.0, 0.004)   # no margin, a peak of 250/s
    assert [round(t, 6) for t in _starts(window, fake, 101)] == [round(i * 0.004, 6) for i in range(100)] + [1.0]
    assert track_limiter(100, None, "even").interval == pytest.approx(1.05 / 100)   # even keeps its margin


ENV = {"CUSTOMERIO_SITE_ID": "site-1", "CUSTOMERIO_API_KEY": "track-key-123", "CUSTOMERIO_APP_API_KEY": "app-key-456"}


def test_from_env_reads_the_rate_settings():
    defaults = CustomerIoDestination.from_env(ENV)
    set_ = CustomerIoDestination.from_env({**ENV, "CUSTOMERIO_RATE_LIMIT": "20", "CUSTOMERIO_RATE_JITTER_SECONDS": "0.2",
                                           "CUSTOMERIO_RATE_PACING": "Even", "CUSTOMERIO_RATE_PEAK": "40"})
    try:
        assert (defaults.requests_per_second, defaults.jitter_seconds, defaults.pacing, defaults.peak_per_second) == (
            100.0, 0.0, "window", 250.0)
        assert (set_.requests_per_second, set_.jitter_seconds, set_.pacing, set_.peak_per_second) == (
            20.0, 0.2, "even", 40.0)
    finally:
        defaults.close()
        set_.close()


@pytest.mark.parametrize("name, value", [("CUSTOMERIO_RATE_PACING", "smooth"),
                                         ("CUSTOMERIO_RATE_JITTER_SECONDS", "-0.1"),
                                         ("CUSTOMERIO_RATE_JITTER_SECONDS", "soon"),
                                         ("CUSTOMERIO_RATE_PEAK", "0")])
def test_from_env_refuses_bad_rate_settings(name, value):
    with pytest.raises(ConfigError, match=name):
        CustomerIoDestination.from_env({**ENV, name: value})


def test_a_sync_through_the_window_meets_a_strict_window_without_a_429(tmp_path):
    """2,000 people and their 2,000 memberships in 80 requests to an emulator that admits 20 a
    second in a strict sliding window, 50 ms away, 8 in flight, at the default settings (no
    margin, a peak of 50/s): the window counts from the ends of requests, so however the requests lag
    on the way (the emulator shares this process and a loaded machine), none is answered 429,
    and ledger, segment and audience agree."""
    project = Project(tmp_path)
    project.env.update(PUSHER_BATCH_SIZE="50")
    project.set_meta("sync_cart", destination="customerio", list_name=SEGMENT)
    project.set_meta("sync_people", destination="customerio")
    project.set_audience_range(0, 2000)
    project.sql("insert into cio_people select 'c' || lpad(cast(i as varchar), 6, '0'), null, 'Name' || i, i, "
                "i % 2 = 0, null from range(0, 2000) t(i)")
    app = create_app(EmulatorOptions(latency_ms=50, rate_limit=20), env={})
    with running(app) as url:
        destination = CustomerIoDestination(SITE, KEY, APP_KEY, track_url=url, app_url=url, requests_per_second=20,
                                            max_in_flight=8)
        wh = Warehouse.connect(load_profile(project.root, env={}))
        try:
            engine = project.engine(wh, destination)
            report = engine.sync_all(engine.project.select(["sync_people", "sync_cart"]))
        finally:
            wh.close()
            destination.close()
        with httpx.Client(base_url=url) as client:
            counts = client.get("/_emulator/stats").json()["requests"]
    assert report.exit_code == 0, report.to_dict()
    track = {endpoint: by_status for endpoint, by_status in counts.items() if " /api/" in endpoint}
    assert track == {"POST /api/v2/batch": {"200": 40}, ADD_ENDPOINT: {"200": 40}}, track
    assert len(app.workspace.inspect()["people"]) == 2000
    segment = next(s for s in app.workspace.inspect()["segments"].values() if s["name"] == SEGMENT)
    assert set(segment["members"]) == set(project.audience()) == set(project.ledger())
    assert len(project.ledger()) == 2000
