"""Helpers shared by the Microsoft Advertising tests (hashes, emulator inspection, settings)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx

from pusher.destinations.base import Member

# One client for all test calls: a new httpx client per call costs tens of milliseconds.
HTTP = httpx.Client(timeout=30)


def sha(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def members(n: int, start: int = 0) -> list[Member]:
    return [Member(key=f"c{i}", email_sha256=sha(f"user{i}@example.com")) for i in range(start, start + n)]


class Emulator:
    def __init__(self, base: str):
        self.base = base

    def state(self) -> dict:
        return HTTP.get(self.base + "/_emulator/state").json()

    def stats(self) -> dict:
        return HTTP.get(self.base + "/_emulator/stats").json()

    def members_of(self, list_id: str) -> set[str]:
        return {h for item in self.state()["lists"] if item["id"] == list_id for h in item["members"]}

    def bulk_calls(self) -> int:
        return sum(sum(by_status.values()) for endpoint, by_status in self.stats()["requests"].items()
                   if endpoint != "token")


def destination_env(base: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        "MSADS_DEVELOPER_TOKEN": "demo-developer-token", "MSADS_CLIENT_ID": "demo-client",
        "MSADS_REFRESH_TOKEN": "demo-refresh-token", "MSADS_CUSTOMER_ID": "1000", "MSADS_ACCOUNT_ID": "2000",
        "MSADS_BULK_URL": base, "MSADS_TOKEN_URL": base, "MSADS_TOKEN_FILE": str(tmp_path / "msads-token"),
        "MSADS_POLL_SECONDS": "0.01", "MSADS_REQUESTS_PER_SECOND": "1000",
        "MSADS_THROTTLE_MAX_WAIT_SECONDS": "0.01", "MSADS_RATE_WAIT_SECONDS": "0.01",
    }
    env.update(extra)
    return env
