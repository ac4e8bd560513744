"""Compare what the emulators hold with what the warehouse says they should hold.

Used by `make demo` to print destination versus audience, and by the end-to-end tests to
assert that after a sync every destination equals the warehouse exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from pusher.config import Project, SyncDefinition
from pusher.destinations.customerio_payloads import event_ulid
from pusher.diff import wire_row
from pusher.timeconv import unix_seconds
from pusher.warehouse import Warehouse, qualified


@dataclass
class Comparison:
    sync: str
    destination: str
    target: str                 # list/segment name, or "people" / "events" / "objects of type N"
    expected: int               # what the warehouse says
    actual: int                 # what the destination holds
    missing: list[str] = field(default_factory=list)   # expected, not at the destination
    extra: list[str] = field(default_factory=list)     # at the destination, not expected
    differing: list[str] = field(default_factory=list)  # people whose attributes differ

    @property
    def equal(self) -> bool:
        return not (self.missing or self.extra or self.differing)


def fetch_states(cio_url: str | None, msads_url: str | None) -> dict[str, Any]:
    states: dict[str, Any] = {}
    if cio_url:
        states["customerio"] = httpx.get(f"{cio_url}/_emulator/state", timeout=30).json()
    if msads_url:
        states["microsoft_ads"] = httpx.get(f"{msads_url}/_emulator/state", timeout=30).json()
    return states


def total_requests(url: str) -> int:
    """Requests the emulator has answered so far (any endpoint, any status)."""
    stats = httpx.get(f"{url}/_emulator/stats", timeout=30).json()
    return sum(sum(counts.values()) for counts in stats.get("requests", {}).values())


def _rows(wh: Warehouse, sync: SyncDefinition) -> tuple[list[str], list[tuple]]:
    relation = qualified(*sync.relation)
    columns = wh.columns(sync.relation)
    return columns, wh.fetchall(f"select * from {relation}")


def _segment_members(state: dict[str, Any], name: str) -> set[str] | None:
    for segment in state.get("segments", {}).values():
        if segment.get("name") == name:
            return set(segment.get("members", []))
    return None


def _list_members(state: dict[str, Any], name: str) -> set[str] | None:
    for item in state.get("lists", []):
        if item.get("name") == name:
            return set(item.get("members", []))
    return None


def _compare_sets(sync: SyncDefinition, target: str, expected: set[str], actual: set[str] | None) -> Comparison:
    actual = actual or set()
    return Comparison(sync.name, sync.destination, target, len(expected), len(actual),
                      missing=sorted(expected - actual), extra=sorted(actual - expected))


def compare_sync(wh: Warehouse, sync: SyncDefinition, states: dict[str, Any]) -> Comparison | None:
    state = states.get(sync.destination)
    if state is None:
        return None
    columns, rows = _rows(wh, sync)
    index = {name: position for position, name in enumerate(columns)}
    if sync.kind == "audience" and sync.destination == "customerio":
        # Customer.io holds memberships of people it knows only; the pusher keeps the others
        # waiting (reported as waiting_for_people) until a people or events sync creates them.
        known = set(state.get("people", {}))
        expected = {row[index["customer_id"]] for row in rows if row[index["customer_id"]] in known}
        return _compare_sets(sync, sync.list_name or "", expected, _segment_members(state, sync.list_name))
    if sync.kind == "audience" and sync.destination == "microsoft_ads":
        expected = {row[index["email_sha256"]] for row in rows if row[index["email_sha256"]]}
        return _compare_sets(sync, sync.list_name or "", expected, _list_members(state, sync.list_name))
    if sync.kind == "events":
        expected = {event_ulid(row[index["event_id"]], unix_seconds(row[index["occurred_at"]])) for row in rows}
        actual = {event["id"] for person in state.get("people", {}).values() for event in person.get("events", [])}
        return _compare_sets(sync, "events", expected, actual)
    if sync.kind == "people":
        people = state.get("people", {})
        comparison = _compare_sets(sync, "people", {row[index["customer_id"]] for row in rows},
                                   {key for key, person in people.items() if person.get("id") is not None})
        for row in rows:
            key = row[index["customer_id"]]
            held = people.get(key, {}).get("attributes", {})
            wanted = {name: value for name, value in wire_row(columns, row).items()
                      if name != "customer_id"}
            if any(held.get(name) != value for name, value in wanted.items()):
                comparison.differing.append(key)
        return comparison
    if sync.kind == "objects":
        prefix = f"{sync.object_type_id}:"
        held = {name[len(prefix):]: entity for name, entity in state.get("objects", {}).items()
                if name.startswith(prefix)}
        comparison = _compare_sets(sync, f"objects of type {sync.object_type_id}",
                                   {row[index["object_id"]] for row in rows}, set(held))
        for row in rows:
            key, entity = row[index["object_id"]], held.get(row[index["object_id"]], {})
            wanted = {name: value for name, value in wire_row(columns, row).items()
                      if name not in ("object_id", "customer_id")}
            related = [row[index["customer_id"]]] if row[index["customer_id"]] is not None else []
            attributes = entity.get("attributes", {})
            if entity.get("relationships") != related or any(attributes.get(name) != value
                                                              for name, value in wanted.items()):
                comparison.differing.append(key)
        return comparison
    return None


def compare_all(project: Project, wh: Warehouse, states: dict[str, Any]) -> list[Comparison]:
    results = (compare_sync(wh, sync, states) for sync in project.syncs)
    return [result for result in results if result is not None]
