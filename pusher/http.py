"""One httpx client per destination, with rate limiting and retries that honour Retry-After.

A destination's limiter (RateLimiter: evenly spaced; WindowLimiter: a count in a sliding
window) is shared by all its workers (see pusher.pipeline): it holds their starts to the
configured rate, and a 429 (with or without Retry-After) seen by one
worker pauses every worker of that destination, not just the one that was answered.
"""

from __future__ import annotations

import email.utils
import math
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

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


class _SharedLimiter:
    """What every limiter here shares: one thread at a time waits for the next start (the
    others queue on `_turn`), so a thread woken late never lets one that came after it take its
    turn; and pause(seconds) holds every thread's next request until the pause ends. The thread
    that called pause sleeps the pause itself (its retry policy's sleep), so it is not held twice.

    A subclass says when the next start is free (`_free_at`) and notes a start (`_note`).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self._paused_until = 0.0
        self._lock = threading.Lock()      # guards the schedule and the pause
        self._turn = threading.Lock()      # held by the thread waiting for the next start
        self._clock = clock
        self._sleep = sleep
        self._served = threading.local()   # per thread: the end of the pause it slept itself

    def _free_at(self) -> float:
        raise NotImplementedError

    def _note(self, now: float) -> None:
        raise NotImplementedError

    def pause(self, seconds: float) -> None:
        with self._lock:
            until = self._clock() + max(seconds, 0.0)
            self._paused_until = max(self._paused_until, until)
            # The caller sleeps its own answer's delay; it is not held again by an older pause.
            self._served.until = self._paused_until

    def wait(self) -> None:
        with self._turn:
            slept_until = float("-inf")
            while True:
                with self._lock:
                    # A pause that began while this thread slept holds it as well.
                    start = max(self._free_at(), self._held_until())
                    now = max(self._clock(), slept_until)
                    if start <= now:
                        self._note(now)
                        return
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

    def _free_at(self) -> float:
        return self._due - self.interval

    def _note(self, now: float) -> None:
        self._due = max(self._due, now) + self.interval


class WindowLimiter(_SharedLimiter):
    """Starts at most `limit` requests in any `window` seconds across threads, no two closer than
    `spacing`: a sliding log of the last `limit` starts, start k going at
    max(now, start[k - limit] + window, start[k - 1] + spacing).

    This is how a limit of "N requests per second" reads when a service counts it in a sliding
    window: a small sync goes at once (N requests fit one window), and a start that came late
    (a thread woken late on a busy machine, or waiting for the GIL) does not lose its slot: the
    starts queued behind it go as soon as it does, as long as the window still has room, where
    even pacing would have pushed every later start back.

    The margin against the jitter of the way is time, not a count: use window = the service's
    window + the most the requests may bunch on the way (`for_rate`). The service's window
    (t - 1 s, t] then sees at most the starts of a span of 1 s + that allowance, which holds
    `limit` at most, however they were bunched when sent. A count margin (sending 95 in a window
    of 1 s against a limit of 100) does not hold for bursts: 95 started together at 0 arrive
    spread over the jitter, up to 0 + J, and the next 95, started together at 1.0, may arrive
    from 1.0 on, so the service's second ending at 1.0 + J/2 sees up to 190. With the window at
    1 s + J, the next 95 (or 100) start at 1 + J and cannot arrive before any of the first are
    out of the service's second.

    Start times are noted when the limiter lets a thread go; the allowance also covers the time
    between that and the request reaching the service. That time grows when many requests leave
    at once (the sending threads, the service and, on one machine, everything else share the
    CPU). Measured against the Customer.io emulator (100 ms away, a strict window of 100/s) on
    2 cores at load 3-4, 1000 requests of a 1M-member sync: released as they came (32 in flight
    at once) they reached its window 100-340 ms after they left the limiter, and 3% were refused;
    at least 8 ms apart (`spacing`, a peak of 125/s) 90% came within 10 ms of the fastest and
    none was refused in two runs (5 ms apart: 1 and 8 refused). So the window lets a small sync
    and a late start go at a peak rate, not all at once.
    """

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, spacing: float = 0.0):
        if limit < 1 or window <= 0:
            raise ValueError(f"a window limiter needs limit >= 1 and window > 0 (got {limit}, {window})")
        super().__init__(clock, sleep)
        self.limit, self.window, self.spacing = int(limit), float(window), spacing
        self._starts: deque[float] = deque(maxlen=self.limit)   # the last `limit` starts, oldest first

    @classmethod
    def for_rate(cls, per_second: float, allowance: float = 0.0, peak: float | None = None,
                 **kwargs) -> "WindowLimiter":
        """`per_second` counted in a one-second window, plus `allowance` seconds of jitter, and
        at most `peak` starts a second at any moment (None: no spacing). A fraction is rounded
        down (95.5/s: 95 in 0.995 s); under 1/s, one per 1/per_second s."""
        if per_second <= 0 or allowance < 0 or (peak is not None and peak <= 0):
            raise ValueError(f"a rate needs per_second > 0, allowance >= 0 and peak > 0 "
                             f"(got {per_second}, {allowance}, {peak})")
        limit = max(1, math.floor(per_second))
        return cls(limit, limit / per_second + allowance, spacing=1.0 / peak if peak else 0.0, **kwargs)

    def _free_at(self) -> float:
        by_window = self._starts[0] + self.window if len(self._starts) == self.limit else float("-inf")
        return max(by_window, self._starts[-1] + self.spacing) if self._starts else by_window

    def _note(self, now: float) -> None:
        self._starts.append(now)           # maxlen drops the oldest, which no longer counts


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


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
        limits=httpx.Limits(max_connections=max(100, keep), max_keepalive_connections=keep),
    )


def send_with_retries(client: httpx.Client, method: str, url: str, *, policy: RetryPolicy,
                      limiter: RateLimiter | None = None, what: str = "request",
                      **kwargs) -> httpx.Response:
    """Send, retrying 429/5xx/network errors; any other response is returned for the caller to judge.

    Raises DestinationUnavailable once the attempts are spent; the caller leaves the rows
    unacknowledged so the next run sends them again.
    """
    last_problem = ""
    for attempt in range(1, policy.max_attempts + 1):
        if limiter:
            limiter.wait()
        retry_after = None
        try:
            response = client.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            last_problem = f"{type(exc).__name__}: {exc}"
        else:
            if response.status_code not in RETRYABLE_STATUS:
                return response
            last_problem = f"HTTP {response.status_code}"
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if response.status_code == 429 and limiter and attempt < policy.max_attempts:
                # Throttled: every worker sharing this limiter holds for the same time.
                delay = policy.backoff(attempt, retry_after)
                limiter.pause(delay)
                policy.sleep(delay)
                continue
        if attempt < policy.max_attempts:
            policy.sleep(policy.backoff(attempt, retry_after))
    raise DestinationUnavailable(
        redact(f"{what} failed after {policy.max_attempts} attempts ({last_problem}); "
               "nothing unacknowledged is lost, rerun the sync later")
    )
