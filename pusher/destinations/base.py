"""The one small interface every destination implements.

The sync engine (pusher.sync) owns the ledger and decides *what* to send; a destination
only knows *how* to send one batch and reports, per row key, what the destination accepted
and what it rejected (with the destination's own reason). A destination never writes the
ledger and never swallows a failure: a batch it could not deliver raises
DestinationUnavailable (retryable later) and its rows stay unacknowledged.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, NamedTuple, Sequence


@dataclass(frozen=True)
class ListRef:
    """A destination list or segment: its full name and, once known, the destination's id."""

    name: str                       # e.g. "CIO__Cart_Abandon_0-1d__NoPurchase"
    external_id: str | None = None  # remembered in the ledger after ensure_list()


class Member(NamedTuple):
    """One audience member, with the identifiers exactly as the ledger recorded/sends them (a
    tuple: a first sync of a million members makes a million of them)."""

    key: str                        # the stable customer_id
    email_sha256: str | None = None  # 64 lowercase hex, SHA-256 of the trimmed lower-cased email
    phone_sha256: str | None = None  # 64 lowercase hex, SHA-256 of the E.164 phone


@dataclass(frozen=True)
class PersonUpdate:
    """Changed attributes of one person. None means "clear this attribute" (sent as null)."""

    key: str                        # customer_id, the Customer.io `id`
    attributes: dict[str, Any]      # only the changed ones; datetimes already Unix seconds
    is_new: bool                    # never acknowledged before: may create the profile
    held: frozenset[str] = frozenset()  # attribute names acknowledged before with a value (the ledger):
                                        # what the destination already holds, for per-person limits
    phone: str | None = None            # the row's current `phone` (E.164), for destinations set to
                                        # identify people by phone; never logged
    timestamp: int | None = None        # the row's state time, Unix seconds (pusher.diff.state_time):
                                        # lets the destination keep the latest state whatever the order


@dataclass(frozen=True)
class ObjectUpdate:
    """Changed attributes of one object (Customer.io objects: an order, a subscription) and the
    change of the one person it relates to. None in `attributes` clears that attribute."""

    key: str                        # the object_id
    object_type_id: str
    attributes: dict[str, Any]      # only the changed ones, without the relationship column
    is_new: bool
    relate_to: str | None = None    # customer_id to relate the object to (new or changed)
    unrelate_from: str | None = None  # customer_id whose relationship to the object is gone
    held: frozenset[str] = frozenset()  # attribute names acknowledged before with a value (the ledger)

    @classmethod
    def of_change(cls, object_type_id: str, key: str, changes: dict[str, Any],
                  previous: dict[str, Any] | None, is_new: bool) -> "ObjectUpdate":
        """From the changed columns of an objects model row; its `customer_id` is the relationship."""
        attributes = {name: value for name, value in changes.items() if name != "customer_id"}
        relate_to = unrelate_from = None
        if "customer_id" in changes:
            relate_to = changes["customer_id"]
            old = (previous or {}).get("customer_id")
            unrelate_from = old if old is not None and old != relate_to else None
        held = frozenset(name for name, value in (previous or {}).items()
                         if value is not None and name != "customer_id")
        return cls(key, object_type_id, attributes, is_new, relate_to, unrelate_from, held)


@dataclass(frozen=True)
class Event:
    key: str                        # the warehouse's deterministic event_id (ledger key); a
                                    # destination derives its own dedupe id from it (Customer.io: a ULID)
    customer_id: str
    name: str
    timestamp: int                  # Unix seconds
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class BatchResult:
    accepted: list[str] = field(default_factory=list)        # row keys the destination acknowledged
    rejected: dict[str, str] = field(default_factory=dict)    # row key -> destination's reason


class Destination(ABC):
    """Base class. Subclasses set the class attributes and implement what they support."""

    kind: str = ""                   # "customerio" | "microsoft_ads" | "file"
    list_prefix: str = ""            # "CIO" | "MSADS" | "FILE": list name = f"{prefix}__{list_name}"
    max_members_per_request: int = 1000
    requests_per_second: float = 10.0
    max_in_flight: int = 1           # batches sent at once (pusher.pipeline); 1 = one after the other
    supports_replace: bool = False   # add_members(..., replace=True) wipes the list first
    # List memberships of people the destination does not know are silently dropped: a member is
    # added only once a people sync has had its person acknowledged (see DiffSql.hold_for_people).
    needs_known_people: bool = False
    supports_people: bool = False
    supports_events: bool = False
    # Which Member field the destination needs: rows where it is NULL are not sent (and reported).
    required_identifier: str = "key"  # "key" | "email_sha256"

    @classmethod
    def from_settings(cls, env: Mapping[str, str], project_dir: Path | None = None) -> "Destination":
        """Build from the environment; a destination with file settings reads relative paths
        against the dbt project directory (by default, from_env alone)."""
        return cls.from_env(env)  # type: ignore[attr-defined]

    @classmethod
    def refresh_after_days(cls, env: Mapping[str, str]) -> float | None:
        """Members acknowledged longer ago than this are re-added (a list whose members expire).
        None: members never expire. A classmethod, so a plan can ask without connecting."""
        return None

    @abstractmethod
    def ensure_list(self, ref: ListRef) -> str:
        """Make sure the list exists (create it if missing); return the destination's id for it."""

    @abstractmethod
    def add_members(self, ref: ListRef, members: Sequence[Member], *, replace: bool = False) -> BatchResult:
        """Add members. With replace=True (only if supports_replace) the list becomes exactly these."""

    @abstractmethod
    def remove_members(self, ref: ListRef, members: Sequence[Member]) -> BatchResult:
        """Remove members, using exactly the identifiers that were added."""

    def list_members(self, ref: ListRef) -> Iterator[str] | None:
        """Member keys the destination holds now, or None when it cannot tell (used to reconcile)."""
        return None

    def look_up_list(self, ref: ListRef) -> None:
        """Start finding the list at the destination in the background, while the plan runs:
        a first sync asks for it next (list_size, ensure_list). It may also create a list it
        does not find (Customer.io does), never change one; by default nothing."""

    def list_size(self, ref: ListRef) -> int | None:
        """How many members the destination holds in the list (found by id, else by name): 0
        when no such list exists, None when it cannot tell. Guards a first sync (empty
        ledger) before it replaces or reconciles a list that already exists."""
        members = self.list_members(ref)
        return None if members is None else sum(1 for _ in members)

    def upsert_people(self, people: Sequence[PersonUpdate]) -> BatchResult:
        raise NotImplementedError(f"{self.kind} does not take people")

    def send_events(self, events: Sequence[Event]) -> BatchResult:
        raise NotImplementedError(f"{self.kind} does not take events")

    def upsert_objects(self, objects: Sequence[ObjectUpdate]) -> BatchResult:
        raise NotImplementedError(f"{self.kind} does not take objects")

    def close(self) -> None:
        """Release HTTP clients and the like."""


def chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Yield lists of at most `size` items, in order."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
