"""A destination that writes files: for inspection, for the demo without credentials, and
as the reference destination in tests (its state can be replayed and compared).

Layout under the directory (PUSHER_FILE_DIR, default `.pusher/file-destination`):
  lists/<list>.jsonl        append-only log, one line per batch: {"op": add|remove|replace, "members": [...]}
  people.jsonl, events.jsonl  append-only logs of identifies and events
  runs/<session>/<list>.{adds,removes}.csv  what each run sent, for people to read
Each batch is fsynced before it is acknowledged, so an acknowledgement is never ahead of the file.

Test hooks (environment): PUSHER_FILE_REJECT_KEYS, a regular expression: matching keys are
rejected on add/identify/event with a reason; PUSHER_FILE_DELAY_MS, a pause per batch;
PUSHER_FILE_MAX_IN_FLIGHT, batches written at once (default 1): appends are serialized by a
lock, the pause is taken outside it, so batches overlap like requests to a real service.
"""

from __future__ import annotations

import csv
import json
import os
import re
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Mapping, Sequence

from pusher.destinations.base import BatchResult, Destination, Event, ListRef, Member, PersonUpdate

DEFAULT_DIR = ".pusher/file-destination"


class FileDestination(Destination):
    kind = "file"
    list_prefix = "FILE"
    max_members_per_request = 1000
    requests_per_second = 0.0   # no rate limit
    supports_replace = True
    supports_people = True
    supports_events = True
    required_identifier = "key"

    def __init__(self, directory: Path | str, reject_keys: str | None = None, delay_ms: int = 0,
                 max_in_flight: int = 1):
        self.directory = Path(directory)
        self.max_in_flight = max(1, max_in_flight)
        self._lock = threading.Lock()   # one writer at a time: a torn-tail check must not see another's write
        self.reject = re.compile(reject_keys) if reject_keys else None
        self.delay = delay_ms / 1000.0
        self.session = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + f"-{os.getpid()}"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "FileDestination":
        return cls(env.get("PUSHER_FILE_DIR") or DEFAULT_DIR, env.get("PUSHER_FILE_REJECT_KEYS") or None,
                   int(env.get("PUSHER_FILE_DELAY_MS") or 0), int(env.get("PUSHER_FILE_MAX_IN_FLIGHT") or 1))

    # -- files ---------------------------------------------------------------------------
    def _list_log(self, name: str) -> Path:
        return self.directory / "lists" / f"{name}.jsonl"

    def _append(self, path: Path, record: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, open(path, "ab+") as handle:
            _drop_torn_tail(handle)
            handle.write((json.dumps(record, separators=(",", ":")) + "\n").encode())
            handle.flush()
            os.fsync(handle.fileno())
        if self.delay:
            # Slow acknowledgement, after the write: a kill here is the worst case
            # (delivered, not yet in the ledger), which the crash tests aim at.
            time.sleep(self.delay)

    def _inspect_csv(self, name: str, what: str, members: Sequence[Member]) -> None:
        path = self.directory / "runs" / self.session / f"{name}.{what}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, open(path, "a", newline="", encoding="utf-8") as handle:
            new = handle.tell() == 0
            writer = csv.writer(handle)
            if new:
                writer.writerow(["customer_id", "email_sha256", "phone_sha256"])
            writer.writerows([m.key, m.email_sha256 or "", m.phone_sha256 or ""] for m in members)

    def _split(self, keys: Sequence[str]) -> BatchResult:
        result = BatchResult()
        for key in keys:
            if self.reject and self.reject.search(key):
                result.rejected[key] = "rejected by the file destination's PUSHER_FILE_REJECT_KEYS rule"
            else:
                result.accepted.append(key)
        return result

    # -- lists ---------------------------------------------------------------------------
    def ensure_list(self, ref: ListRef) -> str:
        path = self._list_log(ref.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)
        return ref.name

    def add_members(self, ref: ListRef, members: Sequence[Member], *, replace: bool = False) -> BatchResult:
        result = self._split([m.key for m in members])
        accepted = set(result.accepted)
        sent = [m for m in members if m.key in accepted]
        self._append(self._list_log(ref.name), {"op": "replace" if replace else "add",
                                                "members": [_member_json(m) for m in sent]})
        self._inspect_csv(ref.name, "adds", sent)
        return result

    def remove_members(self, ref: ListRef, members: Sequence[Member]) -> BatchResult:
        self._append(self._list_log(ref.name), {"op": "remove", "members": [_member_json(m) for m in members]})
        self._inspect_csv(ref.name, "removes", members)
        return BatchResult(accepted=[m.key for m in members])

    def list_members(self, ref: ListRef) -> Iterator[str] | None:
        return iter(sorted(read_list(self.directory, ref.name)))

    # -- people and events ---------------------------------------------------------------
    def upsert_people(self, people: Sequence[PersonUpdate]) -> BatchResult:
        result = self._split([p.key for p in people])
        accepted = set(result.accepted)
        self._append(self.directory / "people.jsonl",
                     {"op": "identify", "people": [{"id": p.key, "is_new": p.is_new, "attributes": p.attributes}
                                                   for p in people if p.key in accepted]})
        return result

    def send_events(self, events: Sequence[Event]) -> BatchResult:
        result = self._split([e.key for e in events])
        accepted = set(result.accepted)
        self._append(self.directory / "events.jsonl",
                     {"op": "events", "events": [{"id": e.key, "customer_id": e.customer_id, "name": e.name,
                                                  "timestamp": e.timestamp, "data": e.data}
                                                 for e in events if e.key in accepted]})
        return result


def _drop_torn_tail(handle: BinaryIO, chunk: int = 65536) -> None:
    """Cut a last line without its newline: a process killed mid-write left it, and it was
    never acknowledged (the batch is resent), so the next record must not be glued to it."""
    end = handle.seek(0, os.SEEK_END)
    if end == 0:
        return
    handle.seek(end - 1)
    if handle.read(1) == b"\n":
        return
    position = end
    while position > 0:
        start = max(0, position - chunk)
        handle.seek(start)
        newline = handle.read(position - start).rfind(b"\n")
        if newline >= 0:
            handle.truncate(start + newline + 1)
            return
        position = start
    handle.truncate(0)


def _member_json(member: Member) -> dict[str, Any]:
    return {"id": member.key, "email_sha256": member.email_sha256, "phone_sha256": member.phone_sha256}


def _records(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.endswith("\n"):      # a torn last line (killed mid-write) was never acknowledged
                yield json.loads(line)


def read_list(directory: Path | str, name: str) -> dict[str, tuple[str | None, str | None]]:
    """Replay a list's log: member key -> (email_sha256, phone_sha256) held now.

    Like an ad platform, the list holds identifiers: a remove drops the member whose
    identifiers match what was added; a remove with other identifiers changes nothing.
    """
    state: dict[str, tuple[str | None, str | None]] = {}
    for record in _records(Path(directory) / "lists" / f"{name}.jsonl"):
        if record["op"] == "replace":
            state = {}
        for member in record["members"]:
            ids = (member["email_sha256"], member["phone_sha256"])
            if record["op"] == "remove":
                if state.get(member["id"]) == ids:
                    del state[member["id"]]
            else:
                state[member["id"]] = ids
    return state


def read_people(directory: Path | str) -> dict[str, dict[str, Any]]:
    """Replay identifies: customer id -> attributes (a null clears an attribute)."""
    people: dict[str, dict[str, Any]] = {}
    for record in _records(Path(directory) / "people.jsonl"):
        for person in record["people"]:
            attributes = people.setdefault(person["id"], {})
            for name, value in person["attributes"].items():
                if value is None:
                    attributes.pop(name, None)
                else:
                    attributes[name] = value
    return people


def read_events(directory: Path | str) -> dict[str, dict[str, Any]]:
    """Replay events, deduplicated by id (as Customer.io does)."""
    events: dict[str, dict[str, Any]] = {}
    for record in _records(Path(directory) / "events.jsonl"):
        for event in record["events"]:
            events.setdefault(event["id"], event)
    return events
