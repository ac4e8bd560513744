"""Controlled test sync: `pusher sync --only C0001,C0002` sends only those customers' changes.

How: each selected sync is planned against a view, not its model, in which the named
customers have their model rows and everybody else has exactly the rows the ledger holds for
them (audiences), or is absent (people and events, which never delete). The ordinary diff of
that view against the ledger is then exactly the named customers' adds, removes, updates and
events; they are delivered and recorded in the ledger like any other batch.

Decisions (documented in the README):
- the guards see the slice's plan, which is what is sent: the remove-share guard measures the
  slice's removals against the whole list (so a slice can hardly trip it), the failed-tests and
  stale-sources guards apply as always;
- a list never synced before gets plain adds (no Microsoft `Replace`, no Customer.io reconcile,
  which would wipe or adopt the whole list for a slice);
- identifiers of other members whose removal is still owed (pending removals) are sent too:
  they are retries of changes already decided.

After the run, `where_now` says per customer and destination what each is in: read back from
Customer.io (App API: the person's segments and attributes) and from the file destination;
Microsoft Advertising cannot list a Customer Match list's members ("Bulk download of customer
list items is not supported", https://learn.microsoft.com/en-us/advertising/bulk-service/customer-list-item),
so for it the answer is what the ledger holds as acknowledged.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, Iterable

from pusher.config import SyncDefinition
from pusher.errors import ConfigError
from pusher.ledger import SCHEMA, table
from pusher.pii import mask
from pusher.state import STATE_CATALOG
from pusher.warehouse import Warehouse, qualified

KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:+\-]{0,127}$")
MAX_KEYS = 1000
DEPARTED = "acknowledged before are no longer in"   # the plan's people/objects warning: meaningless for a slice


def parse_keys(text: str) -> tuple[str, ...]:
    keys = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not keys:
        raise ConfigError("--only needs customer ids, e.g. --only C0001,C0002")
    bad = [key for key in keys if not KEY_RE.match(key)]
    if bad:
        raise ConfigError(f"--only: {bad[0]!r} is not a customer id (letters, digits and _ . : + - only)")
    if len(keys) > MAX_KEYS:
        raise ConfigError(f"--only takes at most {MAX_KEYS} customer ids, got {len(keys)}")
    return keys


def _literals(keys: Iterable[str]) -> str:
    return ", ".join("'" + key.replace("'", "''") + "'" for key in keys)   # keys are checked by KEY_RE


def view_name(sync: SyncDefinition) -> str:
    return f"only__{sync.name}"


def sliced(wh: Warehouse, sync: SyncDefinition, keys: tuple[str, ...]) -> SyncDefinition:
    """The sync, reading a view of its model restricted to `keys` (see the module docstring)."""
    relation = (STATE_CATALOG, SCHEMA, view_name(sync))   # next to the ledger: the warehouse is only read
    model = qualified(*sync.relation)
    wanted = _literals(keys)
    if sync.kind == "audience":
        body = (f"select cast(customer_id as varchar) as customer_id, email_sha256, phone_sha256 from {model} "
                f"where cast(customer_id as varchar) in ({wanted}) "
                f"union all select member_key, email_sha256, phone_sha256 from {table('members')} "
                f"where sync = '{sync.name}' and member_key not in ({wanted})")
    else:
        body = f"select * from {model} where cast(customer_id as varchar) in ({wanted})"
    wh.execute(f"create or replace view {qualified(*relation)} as {body}")
    return replace(sync, relation=relation)


def drop_views(wh: Warehouse, syncs: Iterable[SyncDefinition]) -> None:
    for sync in syncs:
        wh.execute(f"drop view if exists {qualified(STATE_CATALOG, SCHEMA, view_name(sync))}")


def where_now(wh: Warehouse, syncs: list[SyncDefinition], keys: tuple[str, ...], destination_of) -> dict[str, Any]:
    """customer id -> destination -> {"read_from", "lists", "attributes"}; emails and phones masked.
    `destination_of(kind)` gives the run's destination client."""
    from pusher.destinations.file import read_list, read_people

    out: dict[str, dict[str, Any]] = {key: {} for key in keys}
    by_destination: dict[str, list[SyncDefinition]] = {}
    for sync in syncs:
        by_destination.setdefault(sync.destination, []).append(sync)
    for name, chosen in sorted(by_destination.items()):
        lists = [sync for sync in chosen if sync.kind == "audience"]
        if name == "customerio":
            client = destination_of(name)
            for key in keys:
                view = client.person_view(key)
                out[key][name] = {"read_from": "Customer.io App API",
                                  "lists": view["segments"] if view else [],
                                  "attributes": mask(view["attributes"]) if view else None}
        elif name == "file":
            directory = destination_of(name).directory
            people = read_people(directory) if any(sync.kind == "people" for sync in chosen) else {}
            held = {sync.list_name: read_list(directory, sync.list_name) for sync in lists}
            for key in keys:
                out[key][name] = {"read_from": "the destination's files",
                                  "lists": sorted(list_name for list_name, members in held.items() if key in members),
                                  "attributes": mask(people.get(key)) if people else None}
        else:
            names = {sync.name: sync.list_name for sync in lists}
            rows = wh.fetchall(f"select member_key, sync from {table('members')} where sync in "
                               f"({_literals(names) or 'null'}) and member_key in ({_literals(keys)})") if names else []
            for key in keys:
                out[key][name] = {"read_from": "the ledger (Microsoft Advertising cannot list a list's members)",
                                  "lists": sorted(names[sync] for member, sync in rows if member == key),
                                  "attributes": None}
    return out
