"""One httpx client per destination, with rate limiting and retries that honour Retry-After."""

from __future__ import annotations

import email.utils
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import httpx

from pusher import __version__
from pusher.errors import DestinationUnavailable, redact

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
    """Spaces requests so that at most `per_second` start each second (thread-safe)."""

    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            self._sleep(start - now)


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def make_client(base_url: str = "", *, auth: httpx.Auth | tuple[str, str] | None = None,
                headers: dict[str, str] | None = None, timeout: float = 30.0) -> httpx.Client:
    return httpx.Client(
        base_url=base_url,
        auth=auth,
        headers={"User-Agent": USER_AGENT, **(headers or {})},
        timeout=httpx.Timeout(timeout, connect=10.0),
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
        if attempt < policy.max_attempts:
            policy.sleep(policy.backoff(attempt, retry_after))
    raise DestinationUnavailable(
        redact(f"{what} failed after {policy.max_attempts} attempts ({last_problem}); "
               "nothing unacknowledged is lost, rerun the sync later")
    )
