"""One httpx client per destination, with rate limiting and retries that honour Retry-After.

A destination's RateLimiter is shared by all its workers (see pusher.pipeline): it spaces
their requests to the configured rate, and a 429 (with or without Retry-After) seen by one
worker pauses every worker of that destination, not just the one that was answered.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
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


class RateLimiter:
    """Starts requests at most `per_second` a second across threads, evenly spaced (GCRA: a
    leaky bucket with a tolerance of one interval).

    Start n is due one interval after start n-1 was due, and may come up to one interval
    early. So a start that came late (a thread woken late on a busy machine, or waiting for
    the GIL) is caught up by the next one instead of delaying every later start; lateness of
    more than that, or idle time, restarts the schedule from now, so no credit builds up
    beyond a pair. No second holds more than per_second + 2 starts, whatever the lateness (in
    a strict window of the documented limit, the configured rate leaves room for that and
    for the jitter on the way).

    One thread at a time waits for the next start (the others queue on `_turn`), so a thread
    woken late never lets one that came after it take its turn.

    pause(seconds) holds every thread's next request until the pause ends. The thread that
    called it sleeps the pause itself (its retry policy's sleep), so it is not held twice.
    """

    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self._due = float("-inf")          # when the next start is due
        self._paused_until = 0.0
        self._lock = threading.Lock()      # guards the fields above
        self._turn = threading.Lock()      # held by the thread waiting for the next start
        self._clock = clock
        self._sleep = sleep
        self._served = threading.local()   # per thread: the end of the pause it slept itself

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
                    start = max(self._due - self.interval, self._held_until())
                    now = max(self._clock(), slept_until)
                    if start <= now:
                        self._due = max(self._due, now) + self.interval
                        return
                self._sleep(start - now)
                slept_until = start

    def _held_until(self) -> float:
        """The end of the current pause, unless this thread slept that pause itself (lock held)."""
        return self._paused_until if self._paused_until > getattr(self._served, "until", 0.0) else 0.0


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
