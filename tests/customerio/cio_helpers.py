"""Helpers shared by the Customer.io tests (a uniquely named module, so test files can import it)."""

from __future__ import annotations

import httpx

from pusher.http import RetryPolicy

SITE_ID, API_KEY, APP_API_KEY = "demo-site", "demo-key", "demo-app-key"


class Emulator:
    """A running emulator: its URL, authenticated clients for both APIs, and its inspection endpoints."""

    def __init__(self, url: str):
        self.url = url
        # Plain-HTTP loopback: skipping the CA bundle makes each client ~50x cheaper to build.
        self.track = httpx.Client(base_url=url, auth=(SITE_ID, API_KEY), verify=False)
        self.app = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {APP_API_KEY}"}, verify=False)
        self.anonymous = httpx.Client(base_url=url, verify=False)

    def state(self) -> dict:
        return self.anonymous.get("/_emulator/state").json()

    def stats(self) -> dict:
        return self.anonymous.get("/_emulator/stats").json()["requests"]

    def count(self, endpoint: str, status: str | None = None) -> int:
        counts = self.stats().get(endpoint, {})
        return counts.get(status, 0) if status else sum(counts.values())

    def close(self) -> None:
        for client in (self.track, self.app, self.anonymous):
            client.close()


def fast_retries(max_attempts: int = 6) -> RetryPolicy:
    return RetryPolicy(max_attempts=max_attempts, base_delay=0.01, max_delay=0.05)
