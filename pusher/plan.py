"""What a sync would do: counts, sample rows and the cost at the destination's rate limit.

Planning runs only SQL; it sends nothing. Audiences: an aggregate of integer fingerprints
answers the no-change case; otherwise one join on the fingerprints fills a small work table
(see pusher.diff) from which counts, samples and, in `pusher sync`, the batches are read.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Mapping

from pusher.config import SyncDefinition
from pusher.diff import EVENT_FIXED, FINGERPRINT_COLUMN, DiffSql
from pusher.errors import InputError
from pusher.ledger import utcnow
from pusher.warehouse import Warehouse

SAMPLE_ROWS = 5

PROBLEMS = {
    "null_keys": "a NULL {key}",
    "duplicate_keys": "a duplicate {key}",
    "bad_email_sha256": "an email_sha256 that is not 64 lowercase hex characters",
    "bad_phone_sha256": "a phone_sha256 that is not 64 lowercase hex characters",
    "bad_member_fingerprint": "a member_fingerprint that is not the member_fingerprint() macro's value",
    "null_customer_id": "a NULL customer_id",
    "null_event_name": "a NULL event_name",
    "null_occurred_at": "a NULL occurred_at",
}


@dataclass(frozen=True)
class DestinationLimits:
    """What planning needs to know about a destination, without connecting to it."""

    max_members_per_request: int = 1000
    requests_per_second: float = 10.0
    required_identifier: str = "key"
    supports_replace: bool = False
    needs_known_people: bool = False          # memberships of unknown people are silently ignored
    refresh_after_days: float | None = None   # members acknowledged longer ago are re-added

    @classmethod
    def of(cls, destination: Any, env: Mapping[str, str] | None = None) -> "DestinationLimits":
        refresh = getattr(destination, "refresh_after_days", None)
        return cls(destination.max_members_per_request, destination.requests_per_second,
                   destination.required_identifier, destination.supports_replace,
                   getattr(destination, "needs_known_people", False),
                   refresh(os.environ if env is None else env) if refresh else None)


@dataclass
class SyncPlan:
    sync: str
    kind: str
    destination: str
    list_name: str | None
    audience_size: int = 0
    ledger_size: int = 0
    adds: int = 0
    removes: int = 0
    refreshes: int = 0                # unchanged members re-added before their membership expires
    identifier_changes: int = 0
    departures: int = 0
    pending_removals: int = 0         # older identifiers whose removal was not acknowledged yet
    retired: int = 0                  # hash-keyed lists: rows dropped from the ledger only (hash kept by another member)
    updates: int = 0
    new_people: int = 0
    events: int = 0
    skipped: int = 0                  # rows without the destination's required identifier
    exhausted: int = 0                # rows whose retries are spent (reported, not resent)
    waiting: int = 0                  # new members whose person is not acknowledged yet (Customer.io)
    batch_size: int = 1000
    estimated_requests: int = 0
    estimated_seconds: float = 0.0
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def remove_share(self) -> float:
        return self.departures / self.ledger_size if self.ledger_size else 0.0

    @property
    def has_changes(self) -> bool:
        return bool(self.adds or self.removes or self.refreshes or self.updates or self.events or self.retired)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["remove_share"] = round(self.remove_share, 4)
        return data


def batch_size_for(sync: SyncDefinition, limits: DestinationLimits, env: Mapping[str, str] | None = None) -> int:
    """The destination's limit, lowered by meta.pusher.batch_size or PUSHER_BATCH_SIZE."""
    env = os.environ if env is None else env
    size = limits.max_members_per_request
    if sync.batch_size:
        size = min(size, sync.batch_size)
    override = env.get("PUSHER_BATCH_SIZE")
    if override:
        try:
            size = min(size, max(1, int(override)))
        except ValueError:
            pass
    return max(1, size)


def estimate(rows_per_op: list[int], batch_size: int, per_second: float) -> tuple[int, float]:
    requests = sum(math.ceil(rows / batch_size) for rows in rows_per_op if rows)
    return requests, (requests / per_second if per_second > 0 else 0.0)


def validate_rows(wh: Warehouse, diff: DiffSql) -> dict[str, int]:
    """Raise InputError naming the sync and an offending row; return the counts otherwise."""
    sync = diff.sync
    sql, params = diff.validation()
    cursor_row = wh.fetchone(sql, params)
    names = ["total_rows", "null_keys", "duplicate_keys"]
    if sync.kind == "audience":
        names += ["bad_email_sha256", "bad_phone_sha256", "skipped"]
    elif sync.kind == "events":
        names += ["null_customer_id", "null_event_name", "null_occurred_at"]
    counts = {name: int(value or 0) for name, value in zip(names, cursor_row)}
    for problem in PROBLEMS:
        if counts.get(problem):
            _raise_problem(diff, problem, counts[problem], wh.fetchone(*diff.example_of(problem)))
    return counts


def attribute_columns(sync: SyncDefinition, columns: list[str]) -> tuple[str, ...]:
    lowered = {column.lower() for column in columns}
    fixed = {"audience": ("customer_id",), "people": ("customer_id",), "events": EVENT_FIXED,
             "objects": ("object_id",)}[sync.kind]   # an object's customer_id is its relationship, in the payload
    missing = [column for column in fixed if column not in lowered]
    if sync.kind == "audience":
        missing += [c for c in ("email_sha256", "phone_sha256") if c not in lowered]
    if missing:
        raise InputError(f"sync {sync.name}: model {sync.model} lacks the column(s) {', '.join(missing)} "
                         "required by the data contract")
    if sync.kind == "audience":
        return ()
    return tuple(column for column in columns if column.lower() not in fixed)


def make_plan(wh: Warehouse, sync: SyncDefinition, limits: DestinationLimits, *, samples: bool = True,
              env: Mapping[str, str] | None = None, for_delivery: bool = True,
              people_sources: tuple[SyncDefinition, ...] = ()) -> tuple[SyncPlan, DiffSql]:
    """people_sources: the people and events syncs whose acknowledgements make a person known
    to the destination; on destinations that ignore unknown people, a new audience member
    waits for them (see DiffSql.hold_for_people)."""
    if not wh.relation_exists(sync.relation):
        raise InputError(f"sync {sync.name}: model {sync.model} ({'.'.join(filter(None, sync.relation))}) is not in the "
                         "warehouse; run `dbt build` first")
    types = wh.column_types(sync.relation)
    columns = list(types)
    attributes = attribute_columns(sync, columns)
    diff = DiffSql(wh, sync, limits.required_identifier, attributes, temporary_work=not for_delivery,
                   json_columns=tuple(column for column in attributes if types[column] == "JSON"),
                   people_sources=people_sources if limits.needs_known_people and sync.kind == "audience" else ())
    plan = SyncPlan(sync=sync.name, kind=sync.kind, destination=sync.destination, list_name=sync.list_name,
                    batch_size=batch_size_for(sync, limits, env))
    if sync.kind == "audience":
        diff = with_stored_fingerprint(wh, diff, plan, columns)
        try:
            diff = plan_audience(wh, diff, plan, refresh_cutoff(limits))
        except Exception:
            cleanup(wh, diff)          # a refused model leaves no work table behind
            raise
        ops = [plan.removes, plan.adds + plan.refreshes]
    elif sync.kind in ("people", "objects") and _people_unchanged(wh, diff, plan):
        ops = []
    else:
        checked = validate_rows(wh, diff)
        plan.skipped = checked.get("skipped", 0)
        values = [int(value or 0) for value in wh.fetchone(*diff.counts())]
        if sync.kind in ("people", "objects"):
            plan.audience_size, plan.ledger_size, plan.new_people, changed, departed, plan.exhausted = values
            plan.updates = plan.new_people + changed
            if departed:
                what = "objects" if sync.kind == "objects" else "people"
                plan.warnings.append(f"{departed} {what} acknowledged before are no longer in {sync.model}; "
                                     f"{what} syncs never delete them at the destination")
            ops = [plan.updates]
        else:
            plan.audience_size, plan.ledger_size, plan.events, plan.exhausted = values
            ops = [plan.events]
    plan.estimated_requests, plan.estimated_seconds = estimate(ops, plan.batch_size, limits.requests_per_second)
    plan.estimated_seconds = round(plan.estimated_seconds, 2)
    if sync.min_audience_size and sync.kind == "audience" and plan.audience_size < sync.min_audience_size:
        plan.warnings.append(f"audience of {plan.audience_size} is below min_audience_size "
                             f"{sync.min_audience_size} (the destination may not serve it)")
    if plan.skipped:
        plan.warnings.append(f"{plan.skipped} row(s) lack {limits.required_identifier} and are not sent")
    if plan.waiting:
        plan.warnings.append(f"{plan.waiting} new member(s) wait for their person to be acknowledged by "
                             f"{', '.join(source.name for source in people_sources)}: {sync.destination} ignores "
                             "memberships of people it does not know, so they are neither sent nor recorded yet and "
                             "are added on the first run after their person's")
    if plan.exhausted:
        plan.warnings.append(f"{plan.exhausted} row(s) were rejected {sync.max_row_attempts} times and are "
                             "no longer retried (see `pusher status`)")
    if samples and plan.has_changes:
        plan.samples = sample_rows(wh, diff)
    return plan, diff


def _raise_problem(diff: DiffSql, problem: str, count: int, example: tuple | None) -> None:
    sync = diff.sync
    key = {"events": "event_id", "objects": "object_id"}.get(sync.kind, "customer_id")
    if example and example[0] is not None:
        where = f"{key}={example[0]!r}"
    else:
        hint = {"audience": "email_sha256", "people": "email", "events": "customer_id",
                "objects": "customer_id"}[sync.kind]
        where = f"the row with {hint}={example[1]!r}" if example else "a row"
    raise InputError(f"sync {sync.name}: model {sync.model} has {count} row(s) with "
                     f"{PROBLEMS[problem].format(key=key)} (first: {where}); fix the model, nothing was sent "
                     "for this sync")


def with_stored_fingerprint(wh: Warehouse, diff: DiffSql, plan: SyncPlan, columns: list[str]) -> DiffSql:
    """Use the model's member_fingerprint column when it has one that agrees with the pusher's."""
    if FINGERPRINT_COLUMN not in {column.lower() for column in columns}:
        return diff
    stored = replace(diff, stored_fingerprint=True)
    nulls, differing = (int(value) for value in wh.fetchone(*stored.fingerprint_check()))
    if not nulls and not differing:
        return stored
    why = f"{nulls} are NULL" if nulls else f"{differing} of the first rows differ from the pusher's"
    plan.warnings.append(f"{diff.sync.model}.{FINGERPRINT_COLUMN} is not usable ({why}: built by another "
                         "engine version, or not with the member_fingerprint() macro?); the pusher computes the "
                         "fingerprints itself, which is slower. Rebuild the model with `dbt build`.")
    return diff


def refresh_cutoff(limits: DestinationLimits) -> datetime | None:
    """Members acknowledged before this (UTC, as the ledger stores it) are due for a refresh."""
    if limits.refresh_after_days is None:
        return None
    return utcnow() - timedelta(days=limits.refresh_after_days)


def plan_audience(wh: Warehouse, diff: DiffSql, plan: SyncPlan, refresh_before: datetime | None = None) -> DiffSql:
    """Counts of an audience sync; on the slow path, leaves diff.work filled for delivery.
    Returns the DiffSql to deliver from: a first fill (see plan_first_fill) reads the model.

    Malformed rows are always caught before anything is sent: a NULL or duplicate key makes
    the aggregates differ (the ledger has neither), so such a snapshot always takes the slow
    path, where the rows to add are checked (a bad hash in a row equal to its ledger row was
    never sent by us, as the ledger only holds rows that passed these checks when added)."""
    snapshot_rows, snapshot_xor, model_rows, null_keys = wh.fetchone(*diff.snapshot_aggregate())
    if null_keys:
        _raise_problem(diff, "null_keys", int(null_keys), wh.fetchone(*diff.example_of("null_keys")))
    ledger_rows, ledger_xor, pending = wh.fetchone(*diff.ledger_aggregate())
    plan.audience_size, plan.ledger_size = int(snapshot_rows), int(ledger_rows)
    plan.skipped = int(model_rows) - int(snapshot_rows)
    due = int(wh.fetchone(*diff.refresh_due(refresh_before))[0]) if refresh_before else 0
    if (snapshot_rows, snapshot_xor) == (ledger_rows, ledger_xor) and not pending and not due:
        return diff                                     # the common case: nothing changed
    if not ledger_rows and not pending and not int(wh.fetchone(*diff.first_fill_due())[0]):
        return plan_first_fill(wh, diff, plan, int(snapshot_rows))
    by_rowid = wh.is_base_table(diff.sync.relation)
    wh.execute(*diff.stage_fingerprint_diff(by_rowid))
    wh.execute(*diff.build_work(by_rowid))
    row = wh.fetchone(*diff.work_validation())
    for problem, count in zip(("null_keys", "bad_email_sha256", "bad_phone_sha256", "bad_member_fingerprint"), row):
        if count:
            _raise_problem(diff, problem, int(count), wh.fetchone(*diff.work_example(problem)))
    duplicate = wh.fetchone(*diff.duplicate_in_work())
    counts = [int(value or 0) for value in wh.fetchone(*diff.work_counts())]
    added_rows, gone_members = counts[7], counts[8]
    if duplicate is None and snapshot_rows - added_rows != ledger_rows - gone_members:
        # More snapshot rows match the ledger than it has rows: some row is in the model twice.
        duplicate = wh.fetchone(*diff.example_of("duplicate_keys"))
    if duplicate is not None:
        total = wh.fetchone(f"select count(*) - count(distinct customer_id) from {diff.relation}")[0]
        _raise_problem(diff, "duplicate_keys", int(total), duplicate)
    if diff.required == "key":
        wh.execute(*diff.readds())
    if diff.people_sources:
        wh.execute(*diff.hold_for_people())
        plan.waiting = int(wh.fetchone(*diff.waiting_count())[0])
    if diff.required == "key" or plan.waiting:
        counts = [int(value or 0) for value in wh.fetchone(*diff.work_counts())]
    (plan.adds, plan.removes, plan.retired, plan.identifier_changes, plan.departures, plan.exhausted,
     plan.pending_removals) = counts[:7]
    if due:
        wh.execute(*diff.add_refreshes(refresh_before))
        plan.refreshes = int(wh.fetchone(*diff.refresh_count())[0])
    return diff


def plan_first_fill(wh: Warehouse, diff: DiffSql, plan: SyncPlan, rows: int) -> DiffSql:
    """The ledger holds nothing of this sync (a first sync): every row to sync is an add, so
    the join on fingerprints and the work table (a copy of the whole model) would only cost
    time; one pass checks the rows as the slow path checks its adds, and the adds are then
    streamed straight from the model, less those waiting for their person (people_sources)."""
    *checked, waiting = wh.fetchone(*diff.first_fill_validation())
    problems = ("null_keys", "bad_email_sha256", "bad_phone_sha256", "bad_member_fingerprint", "duplicate_keys")
    for problem, count in zip(problems, checked):
        if count:
            _raise_problem(diff, problem, int(count), wh.fetchone(*diff.first_fill_example(problem)))
    plan.waiting = int(waiting or 0)
    plan.adds = rows - plan.waiting
    return replace(diff, first_fill=True)


def _people_unchanged(wh: Warehouse, diff: DiffSql, plan: SyncPlan) -> bool:
    """People: the same aggregate short-circuit (a NULL or duplicate key cannot match)."""
    snapshot = wh.fetchone(*diff.people_aggregate())
    ledger = wh.fetchone(*diff.ledger_people_aggregate())
    if tuple(snapshot) != tuple(ledger):
        return False
    plan.audience_size = plan.ledger_size = int(snapshot[0])
    return True


def cleanup(wh: Warehouse, diff: DiffSql | None) -> None:
    """Drop the work tables of one sync (they are rebuilt by every plan)."""
    if diff is not None and diff.sync.kind == "audience":
        for statement in diff.cleanup():
            wh.execute(statement)


def sample_rows(wh: Warehouse, diff: DiffSql) -> dict[str, list[dict[str, Any]]]:
    kind = diff.sync.kind
    if kind == "audience":
        fields = ("customer_id", "email_sha256", "phone_sha256")
        return {"removes": [dict(zip(fields, row[:3])) for row in wh.fetchall(*diff.removes(SAMPLE_ROWS))],
                "adds": [dict(zip(fields, row[:3])) for row in wh.fetchall(*diff.adds(SAMPLE_ROWS))]}
    if kind in ("people", "objects"):
        from pusher.diff import changed_attributes, wire_row
        import json

        out = []
        for row in wh.fetchall(*diff.people_updates(SAMPLE_ROWS)):
            current = wire_row(diff.attribute_columns, row[4:], diff.json_columns)
            previous = json.loads(row[2]) if row[2] else None
            out.append({diff.key_column: row[0], "is_new": not row[3],
                        "attributes": changed_attributes(current, previous)})
        return {"updates": out}
    rows = wh.fetchall(*diff.new_events(SAMPLE_ROWS))
    return {"events": [{"event_id": row[0], "customer_id": row[1], "event_name": row[2]} for row in rows]}
