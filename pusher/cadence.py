"""Cadence: how often each sync should run (`meta.pusher.cadence`, e.g. `15m`, `1h`, `1d`).

Rules (pure functions; the ledger's sync_runs give the last success):
- due (`pusher sync --due`): a sync with a cadence is due once its cadence, less a grace of
  10 % (at most 5 minutes), has passed since the start of its last successful sync, so a cron
  job at the same interval never skips a turn because the previous run started a few seconds
  late. Never synced: due. No cadence: always due.
- late (`pusher status --check`): a sync with a cadence is late when it has not succeeded
  within twice its cadence (one missed turn is tolerated, two are not), or never has.
- window: an audience whose list name carries a window `<from>-<to><h|d>` (e.g.
  `Cart_Abandon_0-1d`) gets a warning at config validation when its cadence is longer than a
  quarter of that window's width: its members would wait more than a quarter of their window
  before they are sent (a nightly cart-recovery sync turns recovery into a reminder after the
  customer bought elsewhere).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Iterable

from pusher.errors import ConfigError

UNITS = {"m": 60, "h": 3600, "d": 86400}
CADENCE_RE = re.compile(r"^([1-9][0-9]*)([mhd])$")
WINDOW_RE = re.compile(r"_(\d+)-(\d+)([hd])(?=_|$)")
WINDOW_SHARE = 4          # the cadence may take at most 1/4 of the window's width
MAX_GRACE_SECONDS = 300
LATE_FACTOR = 2


def parse(sync: str, value: Any) -> int | None:
    """`15m` / `1h` / `1d` -> seconds; None when not set. Names the sync and field otherwise."""
    if value is None:
        return None
    match = CADENCE_RE.match(value) if isinstance(value, str) else None
    if not match:
        raise ConfigError(f"sync {sync}: meta.pusher.cadence must be a number and a unit m, h or d "
                          f"(e.g. 15m, 1h, 1d), got {value!r}")
    seconds = int(match.group(1)) * UNITS[match.group(2)]
    if seconds > 366 * 86400:
        raise ConfigError(f"sync {sync}: meta.pusher.cadence {value!r} is longer than a year")
    return seconds


def window_seconds(list_name: str | None) -> int | None:
    """The width of the window in a list name (`..._1-3d__...` -> 2 days), None without one."""
    match = WINDOW_RE.search(list_name or "")
    if not match:
        return None
    width = (int(match.group(2)) - int(match.group(1))) * UNITS[match.group(3)]
    return width if width > 0 else None


def window_warnings(syncs: Iterable[Any]) -> list[str]:
    out = []
    for sync in syncs:
        width = window_seconds(sync.list_name) if sync.kind == "audience" else None
        if sync.cadence_seconds and width and sync.cadence_seconds * WINDOW_SHARE > width:
            out.append(f"sync {sync.name}: cadence {sync.cadence} is too slow for its {describe(width)} window "
                       f"({sync.list_name}): members could wait more than a quarter of their window before they "
                       f"are sent; use a cadence of at most {describe(width // WINDOW_SHARE)}")
    return out


def describe(seconds: int) -> str:
    for unit in ("d", "h", "m"):
        if seconds >= UNITS[unit] and seconds % UNITS[unit] == 0:
            return f"{seconds // UNITS[unit]}{unit}"
    return f"{seconds // 60}m" if seconds >= 60 else f"{seconds}s"


def grace(cadence_seconds: int) -> float:
    return min(MAX_GRACE_SECONDS, cadence_seconds * 0.1)


def is_due(cadence_seconds: int | None, last_success: datetime | None, now: datetime) -> bool:
    if not cadence_seconds or last_success is None:
        return True
    return (now - last_success).total_seconds() >= cadence_seconds - grace(cadence_seconds)


def next_due_in(cadence_seconds: int, last_success: datetime, now: datetime) -> int:
    return max(0, int(cadence_seconds - grace(cadence_seconds) - (now - last_success).total_seconds()))


def is_late(cadence_seconds: int | None, last_success: datetime | None, now: datetime) -> bool:
    if not cadence_seconds:
        return False
    return last_success is None or (now - last_success).total_seconds() > LATE_FACTOR * cadence_seconds


def last_successes(wh, syncs) -> dict[str, datetime | None]:
    """When each sync's last successful sync started (ledger sync_runs, naive UTC)."""
    from pusher.ledger import table

    out: dict[str, datetime | None] = {}
    for sync in syncs:
        row = wh.fetchone(f"select max(started_at) from {table('sync_runs')} where sync = ? "
                          "and status in ('ok', 'rejected')", (sync.name,))
        out[sync.name] = row[0] if row else None
    return out
