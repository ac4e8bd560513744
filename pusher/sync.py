"""The delivery engine: plan, guard, then send removes before adds, batch by batch,
writing each acknowledged batch to the ledger at once.

Protocol per sync (at-least-once, idempotent, resumable after a crash at any point):
  1. validate the model's rows and plan in SQL; a guard stops the sync unless overridden;
  2. ensure the list exists; on a first run (empty ledger) reconcile safely:
     - destinations that support it get the first add batch with replace=True (e.g.
       Microsoft's `Replace`): the list becomes exactly our members, no duplicate, and the
       wipe is bounded to lists this sync owns;
     - otherwise, if the destination can list its members, members not in the model are
       removed (subject to the remove-share guard) and those present are adopted;
     - otherwise plain adds (adding twice is harmless);
  3. stream removes (ledger identifiers, exactly as added), then adds / identifies / events,
     in batches of the destination's size; after each acknowledged batch, one ledger
     transaction records accepted rows and the rejected rows with the destination's reason.
A kill between the destination's acknowledgement and the ledger write means the next run
sends that batch again; nothing is ever written to the ledger before delivery.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import repeat
from operator import itemgetter
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from pusher import guards, only, test_evidence
from pusher.config import Project, SyncDefinition
from pusher.destinations import registry
from pusher.destinations.base import BatchResult, Destination, Event, ListRef, Member, ObjectUpdate, PersonUpdate
from pusher.diff import DiffSql, changed_attributes, payload_json, state_time, wire_row
from pusher.errors import (EXIT_OK, EXIT_ROWS_REJECTED, DestinationUnavailable, GuardStopped,
                           PusherError)
from pusher.ledger import Acknowledged, AcknowledgedColumns, BatchRecord, Ledger, Rows, fingerprint_of, table
from pusher.look_ahead import LookAhead
from pusher.pipeline import Pipeline
from pusher.plan import DestinationLimits, SyncPlan, cleanup, make_plan
from pusher.timeconv import unix_seconds
from pusher.warehouse import Warehouse

Progress = Callable[[str, int, int], None]   # (sync, rows done, rows total)

# Builds a named tuple from a tuple of all its fields in C: the class's own constructor is a
# Python call, and a first sync of a million members makes a million Members.
new_tuple = tuple.__new__
MEMBER_FIELDS = itemgetter(slice(0, 3))    # (key, email, phone) of a streamed add row

# Set by the CLI's Ctrl-C handler; checked after every recorded batch (see Engine._record).
INTERRUPT_REQUESTED = threading.Event()

# Customer.io ignores segment ids of people who do not exist yet: within one run, people
# are created first, then their events, then the audience memberships.
KIND_ORDER = {"people": 0, "events": 1, "objects": 1, "audience": 2}   # objects relate to people: after them


def in_delivery_order(syncs: list[SyncDefinition]) -> list[SyncDefinition]:
    return sorted(syncs, key=lambda sync: KIND_ORDER.get(sync.kind, len(KIND_ORDER)))   # stable


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


@dataclass
class SyncOutcome:
    sync: str
    status: str                    # planned | ok | rejected | guard_stopped | input_error | config_error | unreachable
    exit_code: int = EXIT_OK
    plan: dict[str, Any] | None = None
    sent: dict[str, int] = field(default_factory=lambda: {"adds": 0, "removes": 0, "updates": 0, "events": 0})
    requests: int = 0              # requests sent to the destination
    batches: int = 0               # ledger batches written
    rejected: int = 0              # rows the destination rejected in this run
    pending_retries: int = 0       # rejected rows that will be retried next run
    exhausted: int = 0             # rejected max_row_attempts times: reported, no longer retried
    rejection_samples: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""
    stopped_by: list[str] = field(default_factory=list)   # guard names (see pusher.guards.GUARDS)
    warnings: list[str] = field(default_factory=list)


@dataclass
class RunReport:
    run_id: str | None
    command: str
    outcomes: list[SyncOutcome]

    @property
    def exit_code(self) -> int:
        return most_severe(outcome.exit_code for outcome in self.outcomes)

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "command": self.command, "exit_code": self.exit_code,
                "syncs": [outcome.__dict__ for outcome in self.outcomes]}


def most_severe(codes) -> int:
    """1 (a bug) outranks everything; otherwise the highest code (documented in the CLI help)."""
    codes = list(codes) or [EXIT_OK]
    return 1 if 1 in codes else max(codes)


STATUS_OF = {"GuardStopped": "guard_stopped", "InputError": "input_error", "ConfigError": "config_error",
             "DestinationAuthError": "config_error", "DestinationUnavailable": "unreachable",
             "DestinationRequestError": "unreachable"}


class Engine:
    def __init__(self, project: Project, wh: Warehouse, *, env: Mapping[str, str] | None = None,
                 force: bool = False, overrides: Iterable[str] = (), dry_run: bool = False,
                 progress: Progress | None = None,
                 build_destination: Callable[[str], Destination] | None = None,
                 only: tuple[str, ...] = (), look_ahead: LookAhead | None = None):
        self.project = project
        self.wh = wh
        self.env = os.environ if env is None else env
        self.overrides = guards.overridden(force, overrides)
        self.dry_run = dry_run
        self.progress = progress
        self.only = tuple(only)   # --only: these customers' changes alone (pusher.only)
        self._build = build_destination or (lambda kind: registry.build(kind, self.env, project.project_dir))
        self._destinations: dict[str, Destination] = {}
        # Destinations built, and new lists looked up, while other work runs (pusher.look_ahead);
        # the CLI may have started it before the warehouse was even open.
        self._look_ahead = look_ahead or LookAhead(self._build)
        self.ledger = Ledger(wh)
        self.ledger.ensure()
        self._held: list[tuple] | None = None           # batches acknowledged together, written in one call
        self._held_tick: tuple | None = None

    def destination(self, kind: str) -> Destination:
        if kind not in self._destinations:
            self._destinations[kind] = self._look_ahead.take(kind) or self._build(kind)
        return self._destinations[kind]

    def limits(self, kind: str) -> DestinationLimits:
        if kind in self._destinations:
            return DestinationLimits.of(self._destinations[kind], self.env)
        return DestinationLimits.of(registry.destination_class(kind), self.env)

    def close(self) -> None:
        self._look_ahead.close()
        for destination in self._destinations.values():
            destination.close()

    # -- planning --------------------------------------------------------------------------
    def test_evidence(self) -> dict[str, test_evidence.Result] | None:
        """Read once per run: the latest dbt result per node recorded in the warehouse."""
        if not hasattr(self, "_test_evidence"):
            self._test_evidence = test_evidence.read(self.wh)
        return self._test_evidence

    def people_sources(self, sync: SyncDefinition) -> tuple[SyncDefinition, ...]:
        """The people and events syncs of the audience's destination, selected or not: their
        ledgers say which people the destination has acknowledged."""
        return tuple(other for other in self.project.syncs
                     if other.kind in ("people", "events") and other.destination == sync.destination)

    def plan(self, sync: SyncDefinition, for_delivery: bool = True) -> tuple[SyncPlan, DiffSql, list[tuple[str, str]]]:
        planned = only.sliced(self.wh, sync, self.only) if self.only else sync
        plan, diff = make_plan(self.wh, planned, self.limits(sync.destination), env=self.env, for_delivery=for_delivery,
                               people_sources=self.people_sources(sync))
        if self.only:
            plan.warnings = [warning for warning in plan.warnings if only.DEPARTED not in warning]
        return plan, diff, guards.check(sync, plan, self.project.manifest, self.project.target_path,
                                        self.test_evidence())

    def plan_all(self, syncs: list[SyncDefinition]) -> RunReport:
        outcomes = []
        for sync in syncs:
            diff = None
            try:
                plan, diff, stops = self.plan(sync, for_delivery=False)
            except PusherError as exc:
                outcomes.append(_failed(sync, exc))
                continue
            finally:
                cleanup(self.wh, diff)
            outcome = SyncOutcome(sync.name, "planned", plan=plan.to_dict(), warnings=list(plan.warnings))
            if stops:
                outcome.status, outcome.exit_code = "guard_stopped", GuardStopped.exit_code
                outcome.message = "\n".join(message for _, message in stops)
                outcome.stopped_by = [guard for guard, _ in stops]
            outcomes.append(outcome)
        return RunReport(None, "plan", outcomes)

    # -- syncing ---------------------------------------------------------------------------
    def sync_all(self, syncs: list[SyncDefinition]) -> RunReport:
        if self.dry_run:
            report = self.plan_all(syncs)
            report.command = "sync --dry-run"
            return report
        run_id = new_run_id()
        overrides = ["--force"] if self.overrides == set(guards.GUARDS) else [f"--override {g}" for g in sorted(self.overrides)]
        overrides += [f"--only {','.join(self.only)}"] if self.only else []
        self.ledger.start_run(run_id, " ".join(["sync", *overrides]))
        outcomes: list[SyncOutcome] = []
        status = "failed"
        try:
            for sync in in_delivery_order(syncs):
                outcomes.append(self.sync_one(run_id, sync))
            status = "done"
        finally:
            report = RunReport(run_id, "sync", outcomes)
            self.ledger.finish_run(run_id, status, report.exit_code if status == "done" else 1,
                                   {o.sync: {"status": o.status, **o.sent, "rejected": o.rejected} for o in outcomes})
        return report

    def sync_one(self, run_id: str, sync: SyncDefinition) -> SyncOutcome:
        self.ledger.start_sync(run_id, sync.name)
        outcome = SyncOutcome(sync.name, "ok")
        plan: SyncPlan | None = None
        diff: DiffSql | None = None
        try:
            renamed = self._follow_list_name(sync)
            self._look_up_new_list(sync)
            plan, diff, stops = self.plan(sync)
            outcome.plan = plan.to_dict()
            outcome.warnings = list(plan.warnings) + renamed
            stopping = [(guard, message) for guard, message in stops if guard not in self.overrides]
            if stopping:
                outcome.stopped_by = [guard for guard, _ in stopping]
                raise GuardStopped("\n".join(message for _, message in stopping))
            outcome.warnings += [f"overridden ({guard}): {message}" for guard, message in stops]
            if plan.has_changes:
                destination = self.destination(sync.destination)
                # The instance may be configured tighter than the class the plan was made from.
                plan.batch_size = max(1, min(plan.batch_size, destination.max_members_per_request))
                deliver = {"audience": self._deliver_audience, "people": self._deliver_people,
                           "events": self._deliver_events, "objects": self._deliver_objects}[sync.kind]
                deliver(run_id, sync, plan, diff, destination, outcome)
            outcome.pending_retries, outcome.exhausted = self.ledger.rejection_counts(sync.name, sync.max_row_attempts)
            if outcome.rejected or outcome.exhausted:
                outcome.status, outcome.exit_code = "rejected", EXIT_ROWS_REJECTED
                outcome.rejection_samples = self.ledger.rejections(sync.name, limit=10)
                outcome.message = (f"{outcome.rejected} row(s) rejected this run, {outcome.pending_retries} will be "
                                   f"retried next run, {outcome.exhausted} exhausted after {sync.max_row_attempts} "
                                   f"attempts (see `pusher status`; `pusher retry {sync.name}` tries them again)")
        except PusherError as exc:
            failed = _failed(sync, exc)
            outcome.status, outcome.exit_code, outcome.message = failed.status, failed.exit_code, failed.message
        finally:
            cleanup(self.wh, diff)
        counts = {"audience_size": plan.audience_size if plan else None,
                  "ledger_size": self.ledger.member_count(sync.name), "rejected": outcome.rejected,
                  "skipped": plan.skipped if plan else 0, **outcome.sent}
        self.ledger.finish_sync(run_id, sync.name, outcome.status, outcome.exit_code, counts, outcome.message)
        return outcome

    # -- delivery per kind -----------------------------------------------------------------
    def _tick(self, sync: str, plan: SyncPlan, done: int) -> None:
        if self._held is not None:
            self._held_tick = (sync, plan, done)     # shown once the held batches are written
            return
        if self.progress:
            total = plan.adds + plan.refreshes + plan.removes + plan.updates + plan.events
            self.progress(sync, done, total)

    def _record(self, run_id: str, sync: SyncDefinition, outcome: SyncOutcome, op: str, sent: int,
                acknowledged: Rows, rejected: dict[str, tuple[str, str]],
                replaces_rows: bool = True) -> None:
        def count() -> None:
            outcome.requests += 1 if sent else 0
            outcome.batches += 1
            outcome.rejected += len(rejected)
            if op == "retire":
                return
            key = {"remove": "removes", "add": "adds", "replace": "adds", "update": "updates", "event": "events"}[op]
            outcome.sent[key] += len(acknowledged)

        held = self._held
        batch = BatchRecord(outcome.batches + 1 + (len(held) if held is not None else 0), sent, acknowledged,
                            rejected)
        if held is not None:
            held.append((run_id, sync.name, op, replaces_rows, batch, count))
        else:
            self.ledger.record_batches(run_id, sync.name, op, [batch], replaces_rows=replaces_rows)
            count()
        if INTERRUPT_REQUESTED.is_set():
            # Ctrl-C whose KeyboardInterrupt a warehouse query swallowed: stop after this
            # acknowledged batch is recorded (a held one is written on the way out).
            raise KeyboardInterrupt

    def _grouped(self, record: Callable[[Any, Any], None]) -> Callable[[list[tuple[Any, Any]]], None]:
        """A Pipeline record_group: the batches acknowledged together are recorded by `record`
        as usual, but written by one ledger call per run of the same op (see
        Ledger.record_batches); counters and progress follow each write."""
        def record_group(pairs: list[tuple[Any, Any]]) -> None:
            self._held, self._held_tick = [], None
            try:
                for batch, result in pairs:
                    record(batch, result)
            finally:
                # Also after a failure: what was acknowledged is written before the error rises.
                held, tick, self._held, self._held_tick = self._held, self._held_tick, None, None
                while held:
                    run_id, sync, op, replaces_rows = held[0][:4]
                    same = 1
                    while same < len(held) and held[same][:4] == (run_id, sync, op, replaces_rows):
                        same += 1
                    self.ledger.record_batches(run_id, sync, op, [entry[4] for entry in held[:same]],
                                               replaces_rows=replaces_rows)
                    for entry in held[:same]:
                        entry[5]()
                    held = held[same:]
                if tick:
                    self._tick(*tick)
        return record_group

    def _deliver_audience(self, run_id: str, sync: SyncDefinition, plan: SyncPlan, diff: DiffSql,
                          destination: Destination, outcome: SyncOutcome) -> None:
        name = sync.list_name or ""
        known_id = self.ledger.list_external_id(sync.name, name)
        held = None
        if plan.ledger_size == 0 and plan.adds and known_id is None:
            held = self._guard_unknown_list(sync, plan, destination, ListRef(name), outcome)
        external_id = destination.ensure_list(ListRef(name, known_id))
        if external_id != known_id:
            self.ledger.remember_list(sync.name, name, external_id)
        ref = ListRef(name, external_id)
        replace_first = False
        if plan.ledger_size == 0 and plan.adds and not self.only:   # a slice never replaces or reconciles a list
            if destination.supports_replace:
                replace_first = True
            elif held == 0:
                pass        # the destination just said the list holds no one: nothing to reconcile
            elif self._reconcile(run_id, sync, plan, diff, destination, ref, outcome):
                # The ledger now holds the adopted members: diff again so they are not re-added.
                cleanup(self.wh, diff)
                plan, diff = make_plan(self.wh, sync, self.limits(sync.destination), samples=False, env=self.env,
                                       people_sources=self.people_sources(sync))
                plan.batch_size = max(1, min(plan.batch_size, destination.max_members_per_request))
                try:
                    if plan.has_changes:  # no work table exists when the re-plan found nothing left to do
                        self._send_audience(run_id, sync, plan, diff, destination, ref, outcome, False)
                finally:
                    cleanup(self.wh, diff)
                return
        self._send_audience(run_id, sync, plan, diff, destination, ref, outcome, replace_first)

    def _look_up_new_list(self, sync: SyncDefinition) -> None:
        """A list the ledger does not know (a first sync) is looked up at the destination while
        the plan runs, on another thread that also builds the destination (its client, its
        imports) if needed: the first add waits for that much less. The plan still uses the
        destination class's limits, as without it."""
        kind, ref = sync.destination, ListRef(sync.list_name or "")
        if sync.kind != "audience" or self.ledger.list_external_id(sync.name, ref.name) is not None:
            return
        if kind in self._destinations:
            self._destinations[kind].look_up_list(ref)
        else:
            self._look_ahead.start(kind, [ref])

    def _follow_list_name(self, sync: SyncDefinition) -> list[str]:
        """List identity follows list_name: a renamed sync fills the list of its new name from
        scratch, instead of counting the old list's members as the new one's."""
        old = self.ledger.renamed_from(sync.name, sync.list_name) if sync.kind == "audience" and sync.list_name else None
        if old is None or self.dry_run or self.only:
            return []
        forgotten = self.ledger.forget_sync(sync.name)
        return [f"list_name changed from {old} to {sync.list_name}: {sync.list_name} is found or created and filled "
                f"with the model; {old} ({forgotten} members) is left as it is at {sync.destination}, delete it there "
                "if it is no longer used"]

    def _guard_unknown_list(self, sync: SyncDefinition, plan: SyncPlan, destination: Destination, ref: ListRef,
                            outcome: SyncOutcome) -> int | None:
        """An empty ledger that does not know the list (a first sync, or a lost ledger): a
        Replace or reconcile would drop whatever the list holds but the model lacks, so it is
        bounded by the remove_share guard on the size the destination reports, and stops when
        that size is unknown. At least (held - members in the model) would leave. Returns the
        size (None when not asked: the guard is overridden)."""
        if "remove_share" in self.overrides:
            return None
        held = destination.list_size(ref)
        if held == 0:
            return 0                    # no such list yet (or an empty one): a true first sync
        if held is None:
            outcome.stopped_by = ["remove_share"]
            raise GuardStopped(
                f"sync {sync.name}: the ledger holds nothing for list {ref.name}, which already exists at "
                f"{sync.destination}, and {sync.destination} cannot say how many members it has; this sync would "
                f"replace its whole content with the model's {plan.adds} members. If the ledger was lost (a new "
                "machine, a deleted state file) and the model is right, rerun with --override remove_share")
        leaving = max(0, held - plan.adds)
        if leaving / held > sync.max_remove_share:
            outcome.stopped_by = ["remove_share"]
            raise GuardStopped(
                f"sync {sync.name}: the ledger holds nothing for list {ref.name}, which holds {held} members at "
                f"{sync.destination}; the model has {plan.adds}, so at least {leaving} would be removed "
                f"({leaving / held:.0%} > max_remove_share {sync.max_remove_share:.0%}). Check the model, then "
                "rerun with --override remove_share")
        return held

    def _send_audience(self, run_id: str, sync: SyncDefinition, plan: SyncPlan, diff: DiffSql,
                       destination: Destination, ref: ListRef, outcome: SyncOutcome, replace_first: bool) -> None:
        done = [0]
        pipeline = Pipeline(destination.max_in_flight)

        def removes() -> Iterator[tuple[list[Member], int]]:
            for rows in self.wh.stream(*diff.removes(), size=plan.batch_size):
                retire = [Acknowledged(key, email, phone) for key, email, phone, send in rows if not send]
                if retire:
                    # The hash stays on a hash-keyed list for another member: no request, ledger only.
                    self._record(run_id, sync, outcome, "retire", 0, retire, {})
                members = [Member(key, email, phone) for key, email, phone, send in rows if send]
                if members:
                    yield members, len(rows)
                else:
                    done[0] += len(rows)
                    self._tick(sync.name, plan, done[0])

        def record_remove(batch: tuple[list[Member], int], result: BatchResult) -> None:
            members, rows = batch
            by_key = {m.key: m for m in members}
            rejected = {key: (reason, fingerprint_of(by_key[key].email_sha256, by_key[key].phone_sha256))
                        for key, reason in result.rejected.items() if key in by_key}
            acknowledged = [Acknowledged(key, by_key[key].email_sha256, by_key[key].phone_sha256)
                            for key in result.accepted if key in by_key]
            self._record(run_id, sync, outcome, "remove", len(members), acknowledged, rejected)
            done[0] += rows
            self._tick(sync.name, plan, done[0])

        # Every remove is acknowledged before the first add is sent: on a key-keyed list a
        # remove of a key drops the member whatever identifiers it carries.
        pipeline.run(removes(), lambda batch: destination.remove_members(ref, batch[0]), record_remove,
                     self._grouped(record_remove))

        def record_add(op: str, rows: list[tuple], result: BatchResult) -> None:
            # rows: (key, email, phone, replaces). The common answer, every row accepted in
            # order, is recorded as the batch's columns: no lookup, no tuple per row.
            keys, emails, phones, replaces = zip(*rows)
            acknowledged: Sequence[Acknowledged] | AcknowledgedColumns
            if not result.rejected and result.accepted == list(keys):
                acknowledged = AcknowledgedColumns(keys, emails, phones)
                rejected = {}
            else:
                by_key = {row[0]: row for row in rows}
                acknowledged = [Acknowledged(key, by_key[key][1], by_key[key][2])
                                for key in result.accepted if key in by_key]
                rejected = {key: (reason, fingerprint_of(by_key[key][1], by_key[key][2]))
                            for key, reason in result.rejected.items() if key in by_key}
            self._record(run_id, sync, outcome, op, len(rows), acknowledged, rejected, replaces_rows=any(replaces))
            done[0] += len(rows)
            self._tick(sync.name, plan, done[0])

        def add(rows: list[tuple], replace: bool = False) -> BatchResult:
            return destination.add_members(ref, list(map(new_tuple, repeat(Member), map(MEMBER_FIELDS, rows))),
                                           replace=replace)

        adds = iter(self.wh.stream(*diff.adds(), size=plan.batch_size))
        if replace_first:
            # The Replace batch empties the list: it is acknowledged and recorded before any add.
            first = next(adds, None)
            if first is not None:
                record_add("replace", first, add(first, replace=True))
        def record_plain_add(rows: list[tuple], result: BatchResult) -> None:
            record_add("add", rows, result)

        pipeline.run(adds, add, record_plain_add, self._grouped(record_plain_add))

    def _reconcile(self, run_id: str, sync: SyncDefinition, plan: SyncPlan, diff: DiffSql,
                   destination: Destination, ref: ListRef, outcome: SyncOutcome) -> bool:
        """Empty ledger, destination that can list its members: remove the strangers (guarded)
        and adopt the members already there, instead of a blind wipe or duplicate adds.
        False when nothing was done (the destination cannot list its members, or its list is
        empty): the plan stands, no second diff is needed."""
        keys = destination.list_members(ref)
        if keys is None:
            return False
        staging = table("reconcile")
        self.wh.execute(f"create table if not exists {staging} (sync varchar, member_key varchar)")
        self.wh.execute(f"delete from {staging} where sync = ?", (sync.name,))
        batch: list[tuple[str, str]] = []
        for key in keys:
            batch.append((sync.name, str(key)))
            if len(batch) >= 50_000:
                self.wh.insert_rows(staging, ["sync", "member_key"], batch)
                batch = []
        self.wh.insert_rows(staging, ["sync", "member_key"], batch)
        snapshot = f"select cast(customer_id as varchar) as member_key, email_sha256, phone_sha256 from {diff.relation}"
        if diff.required != "key":
            snapshot += f" where {diff.required} is not null"
        held, strangers = self.wh.fetchone(
            f"select count(*), sum(case when s.member_key is null then 1 else 0 end) from {staging} as r "
            f"left join ({snapshot}) as s on s.member_key = r.member_key where r.sync = ?", (sync.name,))
        strangers = int(strangers or 0)
        if held and strangers / held > sync.max_remove_share and "remove_share" not in self.overrides:
            outcome.stopped_by = ["remove_share"]
            raise GuardStopped(f"sync {sync.name}: first run (empty ledger) would remove {strangers} of the {held} "
                               f"members the destination holds ({strangers / held:.0%} > max_remove_share); "
                               "check the model, then rerun with --override remove_share")
        stranger_sql = (f"select r.member_key from {staging} as r where r.sync = ? and not exists "
                        f"(select 1 from ({snapshot}) as s where s.member_key = r.member_key)")
        for rows in self.wh.stream(stranger_sql, (sync.name,), size=plan.batch_size):
            members = [Member(row[0]) for row in rows]
            result = destination.remove_members(ref, members)
            self._record(run_id, sync, outcome, "remove", len(members), [Acknowledged(k) for k in result.accepted],
                         {k: (reason, "/") for k, reason in result.rejected.items()})
        adopt_sql = (f"select s.member_key, s.email_sha256, s.phone_sha256 from ({snapshot}) as s "
                     f"join {staging} as r on r.member_key = s.member_key and r.sync = ?")
        for rows in self.wh.stream(adopt_sql, (sync.name,), size=10_000):
            self.ledger.record_batch(run_id, sync.name, 0, "adopt", len(rows),
                                     [Acknowledged(*row) for row in rows], {}, replaces_rows=False)
        self.wh.execute(f"delete from {staging} where sync = ?", (sync.name,))
        return bool(held)

    def _deliver_people(self, run_id: str, sync: SyncDefinition, plan: SyncPlan, diff: DiffSql,
                        destination: Destination, outcome: SyncOutcome) -> None:
        done = [0]

        def batches() -> Iterator[PeopleBatch]:
            for rows in self.wh.stream(*diff.people_updates(), size=plan.batch_size):
                batch = PeopleBatch(len(rows))
                for key, payload_hash, acknowledged_json, in_ledger, *values in rows:
                    current = wire_row(diff.attribute_columns, values, diff.json_columns)
                    ack = Acknowledged(key, payload_hash=payload_hash, payload_json=payload_json(current))
                    previous = json.loads(acknowledged_json) if acknowledged_json else None
                    changes = changed_attributes(current, previous)
                    if in_ledger and not changes:
                        batch.unchanged.append(ack)    # same values, only the hash's text changed: nothing to send
                        continue
                    held = frozenset(name for name, value in (previous or {}).items() if value is not None)
                    batch.updates.append(PersonUpdate(key, changes, is_new=not in_ledger, held=held,
                                                      phone=current.get("phone"),
                                                      timestamp=state_time(current, previous)))
                    batch.pending[key] = ack
                yield batch

        def send(batch: PeopleBatch) -> BatchResult | None:
            return destination.upsert_people(batch.updates) if batch.updates else None

        def record(batch: PeopleBatch, result: BatchResult | None) -> None:
            pending = batch.pending
            accepted = [pending[key] for key in (result.accepted if result else []) if key in pending]
            rejected = {key: (reason, pending[key].payload_hash)
                        for key, reason in (result.rejected.items() if result else []) if key in pending}
            self._record(run_id, sync, outcome, "update", len(batch.updates), accepted + batch.unchanged, rejected)
            done[0] += batch.rows
            self._tick(sync.name, plan, done[0])

        Pipeline(destination.max_in_flight).run(batches(), send, record, self._grouped(record))

    def _deliver_objects(self, run_id: str, sync: SyncDefinition, plan: SyncPlan, diff: DiffSql,
                         destination: Destination, outcome: SyncOutcome) -> None:
        """Objects (kind: objects) are diffed like people, keyed by object_id; the row's customer_id
        is the relationship, so a changed or cleared one also removes the old relationship."""
        done = 0
        for rows in self.wh.stream(*diff.people_updates(), size=plan.batch_size):
            updates: list[ObjectUpdate] = []
            pending: dict[str, Acknowledged] = {}
            unchanged: list[Acknowledged] = []
            for key, payload_hash, acknowledged_json, in_ledger, *values in rows:
                current = wire_row(diff.attribute_columns, values, diff.json_columns)
                ack = Acknowledged(key, payload_hash=payload_hash, payload_json=payload_json(current))
                previous = json.loads(acknowledged_json) if acknowledged_json else None
                changes = changed_attributes(current, previous)
                if in_ledger and not changes:
                    unchanged.append(ack)
                    continue
                updates.append(ObjectUpdate.of_change(sync.object_type_id or "", key, changes, previous,
                                                      is_new=not in_ledger))
                pending[key] = ack
            result = destination.upsert_objects(updates) if updates else None
            accepted = [pending[key] for key in (result.accepted if result else []) if key in pending]
            rejected = {key: (reason, pending[key].payload_hash)
                        for key, reason in (result.rejected.items() if result else []) if key in pending}
            self._record(run_id, sync, outcome, "update", len(updates), accepted + unchanged, rejected)
            done += len(rows)
            self._tick(sync.name, plan, done)

    def _deliver_events(self, run_id: str, sync: SyncDefinition, plan: SyncPlan, diff: DiffSql,
                        destination: Destination, outcome: SyncOutcome) -> None:
        done = [0]

        def batches() -> Iterator[list[Event]]:
            for rows in self.wh.stream(*diff.new_events(), size=plan.batch_size):
                events = []
                for key, customer_id, name, occurred_at, *values in rows:
                    data = {k: v for k, v in wire_row(diff.attribute_columns, values, diff.json_columns).items()
                            if v is not None}
                    events.append(Event(key, customer_id, name, unix_seconds(occurred_at), data))
                yield events

        def record(events: list[Event], result: BatchResult) -> None:
            keys = {event.key for event in events}
            self._record(run_id, sync, outcome, "event", len(events),
                         [Acknowledged(key) for key in result.accepted if key in keys],
                         {key: (reason, "") for key, reason in result.rejected.items() if key in keys},
                         replaces_rows=False)
            done[0] += len(events)
            self._tick(sync.name, plan, done[0])

        Pipeline(destination.max_in_flight).run(batches(), destination.send_events, record, self._grouped(record))


@dataclass
class PeopleBatch:
    """One streamed batch of people: what to send, and what to record once it is acknowledged."""

    rows: int
    updates: list[PersonUpdate] = field(default_factory=list)
    pending: dict[str, Acknowledged] = field(default_factory=dict)     # sent: recorded if accepted
    unchanged: list[Acknowledged] = field(default_factory=list)        # not sent: recorded with the batch


def _failed(sync: SyncDefinition, exc: PusherError) -> SyncOutcome:
    status = STATUS_OF.get(type(exc).__name__, "error")
    message = str(exc)
    if isinstance(exc, DestinationUnavailable):
        message += " (acknowledged batches are in the ledger; the rest is sent next run)"
    return SyncOutcome(sync.name, status, exit_code=exc.exit_code, message=message)
