"""One httpx client per destination, with rate limiting and retries that honour Retry-After.

A destination's limiter (RateLimiter: evenly spaced; WindowLimiter: a count in a sliding
window, anchored on when requests end) is shared by all its workers (see pusher.pipeline): it
holds their starts to the configured rate, and a 429 (with or without Retry-After) seen by one
worker pauses every worker of that destination, not just the one that was answered. A request
holds a limiter's `slot()` from its start to its end (answered or failed).
"""

from __future__ import annotations

import email.utils
import functools
import math
import random
import threading
import time
from collections import deque
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Callable, Iterator

import httpx

from pusher import __version__
from pusher.errors import DestinationUnavailable, redact, register_basic_auth

USER_AGENT = f"pusher/{__version__}"
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass
class RetryPolicy:
    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """Delay before retry number `attempt` (1-based): Retry-After if given, else full jitter."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay)
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return self.rng.uniform(0, ceiling)


class Start:
    """One request let go by a limiter: when it started, and when it ended (None while in flight)."""

    __slots__ = ("at", "ended")

    def __init__(self, at: float):
        self.at: float = at
        self.ended: float | None = None


class _SharedLimiter:
    """What every limiter here shares: one thread at a time waits for the next start (the
    others queue on `_turn`), so a thread woken late never lets one that came after it take its
    turn; and pause(seconds) holds every thread's next request until the pause ends. The thread
    that called pause sleeps the pause itself (its retry policy's sleep), so it is not held twice.

    After a pause, the first request goes alone and the others wait for its answer: if the
    service still refuses, one request learns it (and pauses everyone again), not every worker
    at once. A request holds its `slot()` from start to end; a 429 pauses before the slot ends.

    A subclass says when the next start is free (`_free_at`) and notes a start (`_note`).
    """

    POLL_SECONDS = 0.005     # how often a start held by a request still in flight looks again

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self._paused_until = 0.0
        self._probe: Start | bool = False  # True: the next start goes alone; a Start: it is in flight
        self._lock = threading.Lock()      # guards the schedule, the pause and the probe
        self._turn = threading.Lock()      # held by the thread waiting for the next start
        self._clock = clock
        self._sleep = sleep
        self._served = threading.local()   # per thread: the end of the pause it slept itself

    def _free_at(self, now: float) -> float:
        raise NotImplementedError

    def _note(self, start: Start) -> None:
        raise NotImplementedError

    def done(self, start: Start) -> None:
        """The request let go as `start` (what wait returned) has ended: answered, or failed."""
        with self._lock:
            start.ended = self._clock()
            if self._probe is start:
                self._probe = False

    @contextmanager
    def slot(self) -> Iterator[Start]:
        """Hold a start for one request, from when the limiter lets it go to when it ends."""
        start = self.wait()
        try:
            yield start
        finally:
            self.done(start)

    def pause(self, seconds: float) -> None:
        with self._lock:
            until = self._clock() + max(seconds, 0.0)
            self._paused_until = max(self._paused_until, until)
            self._probe = True
            # The caller sleeps its own answer's delay; it is not held again by an older pause.
            self._served.until = self._paused_until

    def wait(self) -> Start:
        with self._turn:
            slept_until = float("-inf")
            while True:
                with self._lock:
                    now = max(self._clock(), slept_until)
                    # A pause that began while this thread slept holds it as well.
                    start = max(self._free_at(now), self._held_until())
                    if isinstance(self._probe, Start):     # after a pause: the lone request is out
                        start = max(start, now + self.POLL_SECONDS)
                    if start <= now:
                        started = Start(now)
                        self._note(started)
                        if self._probe is True:
                            self._probe = started
                        return started
                self._sleep(start - now)
                slept_until = start

    def _held_until(self) -> float:
        """The end of the current pause, unless this thread slept that pause itself (lock held)."""
        return self._paused_until if self._paused_until > getattr(self._served, "until", 0.0) else 0.0


class RateLimiter(_SharedLimiter):
    """Starts requests at most `per_second` a second across threads, evenly spaced (GCRA: a
    leaky bucket with a tolerance of one interval).

    Start n is due one interval after start n-1 was due, and may come up to one interval
    early. So a start that came late (a thread woken late on a busy machine, or waiting for
    the GIL) is caught up by the next one instead of delaying every later start; lateness of
    more than that, or idle time, restarts the schedule from now, so no credit builds up
    beyond a pair. No second holds more than per_second + 2 starts, whatever the lateness.
    For a limit a service smooths over the second (or documents as a steady rate).
    """

    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        super().__init__(clock, sleep)
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self._due = float("-inf")          # when the next start is due

    def _free_at(self, now: float) -> float:
        return self._due - self.interval

    def _note(self, start: Start) -> None:
        self._due = max(self._due, start.at) + self.interval


class WindowLimiter(_SharedLimiter):
    """Starts at most `limit` requests in any `window` seconds across threads, counted where the
    service counts them: start k goes at max(now, end[k - limit] + window, start[k - 1] + spacing),
    where end[k - limit] is when the request `limit` starts earlier ended (its answer came back,
    or it failed). A request still in flight there holds start k until it ends.

    Why the end and not the start: a service counts a request somewhere between our letting it go
    and our reading its answer (on arrival, or when it answers). So if start k waits until
    end[k - limit] + window, request k reaches the service more than `window` after request
    k - limit did, and no `limit` + 1 requests fit one `window` of the service, however they
    bunched or lagged on the way: take any `limit` + 1 requests, the earliest started k and the
    latest started m >= k + limit; m is counted after start[m] >= start[k + limit] >= end[k] +
    window, and k before end[k]. No margin guessed from the jitter of the way is needed. That was
    the previous reading (a window of starts plus 50 ms): measured against the Customer.io emulator
    (100 ms away, a strict window of 100/s) on 2 cores at load 3-4, requests released 32 at once
    reached its window 100-340 ms after they left the limiter, and 3% were refused, so starts had
    to be spaced 8 ms apart, and 100 requests took 0.8 s to start where the limit allows them at
    once. The price of the end: a request's round trip is added to each window it anchors (100
    per 1.1 s at 100 ms round trips, where the service would take 100 per 1.0 s).

    This is how a limit of "N requests per second" reads when a service counts it in a sliding
    window, the strictest common reading (a fixed second, or a bucket of N refilled at N a second,
    admits any sequence a sliding second does): a small sync goes at once, and a start that came
    late (a thread woken late on a busy machine) does not lose its slot: the starts queued behind
    it go as soon as it does, as long as the window has room. `spacing` (a peak rate) is optional.
    """

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, spacing: float = 0.0):
        if limit < 1 or window <= 0:
            raise ValueError(f"a window limiter needs limit >= 1 and window > 0 (got {limit}, {window})")
        super().__init__(clock, sleep)
        self.limit, self.window, self.spacing = int(limit), float(window), spacing
        self._starts: deque[Start] = deque(maxlen=self.limit)   # the last `limit`, oldest first

    @classmethod
    def for_rate(cls, per_second: float, allowance: float = 0.0, peak: float | None = None,
                 **kwargs) -> "WindowLimiter":
        """`per_second` counted in a one-second window, plus `allowance` seconds of margin, and
        at most `peak` starts a second at any moment (None: no spacing). A fraction is rounded
        down (95.5/s: 95 in 0.995 s); under 1/s, one per 1/per_second s."""
        if per_second <= 0 or allowance < 0 or (peak is not None and peak <= 0):
            raise ValueError(f"a rate needs per_second > 0, allowance >= 0 and peak > 0 "
                             f"(got {per_second}, {allowance}, {peak})")
        limit = max(1, math.floor(per_second))
        return cls(limit, limit / per_second + allowance, spacing=1.0 / peak if peak else 0.0, **kwargs)

    def _free_at(self, now: float) -> float:
        if not self._starts:
            return float("-inf")
        by_spacing = self._starts[-1].at + self.spacing
        if len(self._starts) < self.limit:
            return by_spacing
        ended = self._starts[0].ended
        if ended is None:                  # still in flight: look again shortly
            return max(by_spacing, now + self.POLL_SECONDS)
        return max(by_spacing, ended + self.window)

    def _note(self, start: Start) -> None:
        self._starts.append(start)         # maxlen drops the oldest, which no longer counts


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header, delay-seconds or an HTTP-date (RFC 9110,
    10.2.3); None when absent or malformed, and the caller backs off on its own."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, parsed.timestamp() - time.time())
    return max(0.0, seconds) if math.isfinite(seconds) else None


@functools.lru_cache(maxsize=None)
def shared_ssl_context():
    """One TLS context for every client of the process: making one reads the whole CA bundle
    (about 60 ms), and a Customer.io destination has two clients. The context httpx would make
    for each (its defaults: certifi's bundle, or SSL_CERT_FILE / SSL_CERT_DIR); an SSLContext
    may be shared by clients and threads."""
    return httpx.create_ssl_context()


def make_client(base_url: str = "", *, auth: httpx.Auth | tuple[str, str] | None = None,
                headers: dict[str, str] | None = None, timeout: float = 30.0,
                in_flight: int = 1) -> httpx.Client:
    """in_flight: requests sent at once; that many connections are kept open between them
    (httpx keeps 20 by default: more workers would open a new connection per request)."""
    if isinstance(auth, tuple):
        register_basic_auth(*auth)        # its base64 header form is a secret too
    keep = max(20, in_flight)
    return httpx.Client(
        base_url=base_url,
        auth=auth,
        headers={"User-Agent": USER_AGENT, **(headers or {})},
        timeout=httpx.Timeout(timeout, connect=10.0),
        verify=shared_ssl_context(),
        limits=httpx.Limits(max_connections=max(100, keep), max_keepalive_connections=keep),
    )


def send_with_retries(client: httpx.Client, method: str, url: str, *, policy: RetryPolicy,
                      limiter: RateLimiter | WindowLimiter | None = None, what: str = "request",
                      **kwargs) -> httpx.Response:
    """Send, retrying 429/5xx/network errors; any other response is returned for the caller to judge.

    Raises DestinationUnavailable once the attempts are spent; the caller leaves the rows
    unacknowledged so the next run sends them again.
    """
    last_problem = ""
    for attempt in range(1, policy.max_attempts + 1):
        retry_after = throttled_for = None
        try:
            with limiter.slot() if limiter else nullcontext():
                response = client.request(method, url, **kwargs)
                if response.status_code in RETRYABLE_STATUS:
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
                if response.status_code == 429 and limiter and attempt < policy.max_attempts:
                    # Throttled: every worker sharing this limiter holds for the same time, from
                    # before this slot ends, so no other start slips in between.
                    throttled_for = policy.backoff(attempt, retry_after)
                    limiter.pause(throttled_for)
        except httpx.TransportError as exc:
            last_problem = f"{type(exc).__name__}: {exc}"
        else:
            if response.status_code not in RETRYABLE_STATUS:
                return response
            last_problem = f"HTTP {response.status_code}"
            if throttled_for is not None:
                policy.sleep(throttled_for)
                continue
        if attempt < policy.max_attempts:
            policy.sleep(policy.backoff(attempt, retry_after))
    raise DestinationUnavailable(
        redact(f"{what} failed after {policy.max_attempts} attempts ({last_problem}); "
               "nothing unacknowledged is lost, rerun the sync later")
    )
