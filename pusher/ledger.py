"""The delivery ledger: what each destination acknowledged.

Tables live in their own schema (`pusher_ledger`) of the pusher's state file, attached to the
warehouse connection (see pusher.state), so a rebuilt warehouse keeps them. A row enters `members` only after the
destination acknowledged it, and each acknowledged batch is written in a transaction right
away (with the batches acknowledged at the same moment, see record_batches); so a crash at
any point loses at most acknowledgements, which the next run turns into a resend (adds,
removes and identifies are idempotent), never a lost change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import chain, repeat
from operator import itemgetter
from typing import Any, Iterable, Iterator, NamedTuple, Sequence, Union

from pusher.errors import redact
from pusher.state import LEDGER_SCHEMA, STATE_CATALOG
from pusher.warehouse import Warehouse, qualified

SCHEMA = LEDGER_SCHEMA

TABLES = {
    "runs": """(run_id varchar, command varchar, started_at timestamp, finished_at timestamp,
                status varchar, exit_code integer, summary_json varchar)""",
    "sync_runs": """(run_id varchar, sync varchar, status varchar, exit_code integer,
                     audience_size bigint, ledger_size bigint, adds bigint, removes bigint,
                     updates bigint, events bigint, rejected bigint, skipped bigint,
                     message varchar, started_at timestamp, finished_at timestamp)""",
    "batches": """(run_id varchar, sync varchar, batch_no integer, op varchar, row_count integer,
                   accepted integer, rejected integer, recorded_at timestamp)""",
    # One row per (sync, member_key): what the destination holds for it now. `fingerprint`
    # is the warehouse's 64-bit hash of what was sent (see audience_fingerprint_sql).
    "members": """(sync varchar, member_key varchar, email_sha256 varchar, phone_sha256 varchar,
                   payload_hash varchar, payload_json varchar, acknowledged_run_id varchar,
                   acknowledged_at timestamp, fingerprint bigint)""",
    # Identifiers a member had before a newer add was acknowledged, whose removal is not
    # acknowledged yet (rejected, or the run died in between): still on the destination, so
    # they stay here, and in every plan's removes, until a remove of them is acknowledged.
    "pending_removals": """(sync varchar, member_key varchar, email_sha256 varchar, phone_sha256 varchar,
                            fingerprint bigint, superseded_run_id varchar, superseded_at timestamp)""",
    "rejections": """(sync varchar, member_key varchar, op varchar, fingerprint varchar,
                      reason varchar, attempts integer, last_run_id varchar, last_at timestamp)""",
    "lists": """(sync varchar, list_name varchar, external_id varchar, recorded_at timestamp)""",
    # The engine version that computed the stored fingerprints (its hash is only stable within one).
    "settings": """(name varchar, value varchar)""",
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def table(name: str) -> str:
    return qualified(STATE_CATALOG, SCHEMA, name)


class Acknowledged(NamedTuple):
    """One row as the destination acknowledged it (a tuple: a million of them are made and
    staged column by column in a first sync of a million members)."""

    member_key: str
    email_sha256: str | None = None
    phone_sha256: str | None = None
    payload_hash: str | None = None
    payload_json: str | None = None


class AcknowledgedColumns:
    """Acknowledged audience rows column by column: a batch the destination accepted whole,
    in order (a first sync's common answer), recorded with no tuple per row. Iterating it
    yields its Acknowledged rows."""

    __slots__ = ("member_key", "email_sha256", "phone_sha256")

    def __init__(self, member_key: Sequence[str], email_sha256: Sequence[str | None],
                 phone_sha256: Sequence[str | None]):
        self.member_key, self.email_sha256, self.phone_sha256 = member_key, email_sha256, phone_sha256

    def __len__(self) -> int:
        return len(self.member_key)

    def __iter__(self) -> Iterator[Acknowledged]:
        return map(Acknowledged, self.member_key, self.email_sha256, self.phone_sha256)


Rows = Union[Sequence[Acknowledged], AcknowledgedColumns]
Columns = list[Union[Sequence[Any], None]]     # one per Acknowledged field; None: null in every row


def _columns(rows: Rows) -> Columns:
    if isinstance(rows, AcknowledgedColumns):
        columns = [rows.member_key, rows.email_sha256, rows.phone_sha256]
    else:
        columns = list(zip(*rows))
    # A column empty in every row (the payload of an audience batch, often its phones) is a
    # constant, not values to pass: staging is most of a batch's ledger cost.
    columns = [values if values.count(None) < len(values) else None for values in columns]
    return columns + [None] * (len(Acknowledged._fields) - len(columns))


def _keys(rows: Rows) -> Iterable[str]:
    return rows.member_key if isinstance(rows, AcknowledgedColumns) else map(itemgetter(0), rows)


def _concatenated(parts: Sequence[Rows]) -> Columns:
    """The columns of several batches' rows, end to end."""
    columns = [_columns(rows) for rows in parts if len(rows)]
    if not columns:
        return [[]] + [None] * (len(Acknowledged._fields) - 1)
    sizes = [len(batch[0]) for batch in columns]
    return [None if all(batch[index] is None for batch in columns) else
            list(chain.from_iterable(repeat(None, size) if batch[index] is None else batch[index]
                                     for batch, size in zip(columns, sizes)))
            for index in range(len(Acknowledged._fields))]


@dataclass
class BatchRecord:
    """One acknowledged batch: its number in the run's history, the rows sent, and the
    destination's answer."""

    batch_no: int
    sent: int
    acknowledged: Rows
    rejected: dict[str, tuple[str, str]]


def _disjoint_groups(op: str, batches: Sequence[BatchRecord]) -> Iterable[list[BatchRecord]]:
    """Consecutive batches cut where a key repeats (a later batch must see the earlier one
    written) and around every "replace" (it empties the list first)."""
    group: list[BatchRecord] = []
    keys: set[str] = set()
    for batch in batches:
        batch_keys = set(_keys(batch.acknowledged)) | set(batch.rejected)
        if group and (op == "replace" or not keys.isdisjoint(batch_keys)):
            yield group
            group, keys = [], set()
        group.append(batch)
        keys |= batch_keys
    if group:
        yield group


def audience_fingerprint_sql(wh: Warehouse, key: str = "member_key", email: str = "email_sha256",
                             phone: str = "phone_sha256") -> str:
    """The integer fingerprint of one audience row as sent: (key, email_sha256, phone_sha256).
    It covers the key too, so it names the row on its own (the diff joins on it alone)."""
    return wh.fingerprint_sql([key, email, phone])


def people_fingerprint_sql(wh: Warehouse, key: str = "member_key", payload_hash: str = "payload_hash") -> str:
    return wh.fingerprint_sql([key, payload_hash])


def _stored_fingerprint_sql(wh: Warehouse) -> str:
    """For ledger rows: people rows carry a payload hash, audience (and event) rows do not."""
    return (f"case when payload_hash is not null then {people_fingerprint_sql(wh)} "
            f"else {audience_fingerprint_sql(wh)} end")


def fingerprint_of(email_sha256: str | None, phone_sha256: str | None) -> str:
    """What a rejection is about, so a row whose identifiers changed is tried afresh."""
    return f"{email_sha256 or ''}/{phone_sha256 or ''}"


class Ledger:
    def __init__(self, warehouse: Warehouse):
        self.wh = warehouse
        # (table, sync) -> whether the table may hold rows of the sync. When it holds none, its
        # deletes by key are skipped (a first sync would run two per acknowledged group for
        # nothing). Only this class writes those tables; it asks again when a run or sync
        # starts, and an insert makes it True.
        self._may_hold_rows: dict[tuple[str, str], bool] = {}

    def ensure(self) -> None:
        self.wh.execute(f"create schema if not exists {qualified(STATE_CATALOG, SCHEMA)}")
        for name, columns in TABLES.items():
            self.wh.execute(f"create table if not exists {table(name)} {columns}")
        # Ledgers written before fingerprints existed, or with unsigned ones: (re)make the
        # column and fill it once.
        stale = False
        for name in ("members", "pending_removals"):
            kind = self.wh.column_types((STATE_CATALOG, SCHEMA, name)).get("fingerprint")
            if kind != "BIGINT":
                if kind is not None:
                    self.wh.execute(f"alter table {table(name)} drop column fingerprint")
                self.wh.execute(f"alter table {table(name)} add column fingerprint bigint")
                stale = True
        if stale:
            self.refresh_fingerprints()
        # A warehouse upgrade may change its hash function: recompute the stored fingerprints
        # once, instead of every member looking changed and being sent again.
        engine = str(self.wh.fetchone("select version()")[0])
        stamped = self.wh.fetchone(f"select value from {table('settings')} where name = 'fingerprint_engine'")
        if stamped is None or stamped[0] != engine:
            with self.wh.transaction():
                if stamped is not None:
                    self.refresh_fingerprints()
                self.wh.execute(f"delete from {table('settings')} where name = 'fingerprint_engine'")
                self.wh.execute(f"insert into {table('settings')} values ('fingerprint_engine', ?)", (engine,))

    def refresh_fingerprints(self) -> None:
        """Recompute stored fingerprints from the stored values (after a migration, or if the
        warehouse's hash function ever changed)."""
        expression = _stored_fingerprint_sql(self.wh)
        self.wh.execute(f"update {table('members')} set fingerprint = {expression} "
                        f"where fingerprint is distinct from {expression}")
        pending = audience_fingerprint_sql(self.wh)
        self.wh.execute(f"update {table('pending_removals')} set fingerprint = {pending} "
                        f"where fingerprint is distinct from {pending}")

    # -- runs ----------------------------------------------------------------------------
    def start_run(self, run_id: str, command: str) -> None:
        self._may_hold_rows.clear()
        with self.wh.transaction():
            # A run still marked running was killed: say so in history.
            self.wh.execute(f"update {table('runs')} set status = 'interrupted' where status = 'running'")
            self.wh.execute(f"update {table('sync_runs')} set status = 'interrupted' where status = 'running'")
            self.wh.execute(f"insert into {table('runs')} values (?, ?, ?, null, 'running', null, null)",
                            (run_id, command, utcnow()))

    def finish_run(self, run_id: str, status: str, exit_code: int, summary: dict[str, Any]) -> None:
        self.wh.execute(f"update {table('runs')} set finished_at = ?, status = ?, exit_code = ?, summary_json = ? "
                        "where run_id = ?", (utcnow(), status, exit_code, redact(json.dumps(summary, default=str)), run_id))

    def start_sync(self, run_id: str, sync: str) -> None:
        self._may_hold_rows.clear()
        self.wh.execute(f"insert into {table('sync_runs')} (run_id, sync, status, started_at) "
                        "values (?, ?, 'running', ?)", (run_id, sync, utcnow()))

    def finish_sync(self, run_id: str, sync: str, status: str, exit_code: int, counts: dict[str, int],
                    message: str = "") -> None:
        self.wh.execute(
            f"update {table('sync_runs')} set status = ?, exit_code = ?, audience_size = ?, ledger_size = ?, "
            "adds = ?, removes = ?, updates = ?, events = ?, rejected = ?, skipped = ?, message = ?, "
            "finished_at = ? where run_id = ? and sync = ?",
            (status, exit_code, counts.get("audience_size"), counts.get("ledger_size"), counts.get("adds", 0),
             counts.get("removes", 0), counts.get("updates", 0), counts.get("events", 0),
             counts.get("rejected", 0), counts.get("skipped", 0), redact(message), utcnow(), run_id, sync))

    # -- members -------------------------------------------------------------------------
    def pending_removal_count(self, sync: str) -> int:
        return self.wh.fetchone(f"select count(*) from {table('pending_removals')} where sync = ?", (sync,))[0]

    def member_count(self, sync: str) -> int:
        return self.wh.fetchone(f"select count(*) from {table('members')} where sync = ?", (sync,))[0]

    def list_external_id(self, sync: str, list_name: str) -> str | None:
        row = self.wh.fetchone(f"select external_id from {table('lists')} where sync = ? and list_name = ?",
                               (sync, list_name))
        return row[0] if row else None

    def remember_list(self, sync: str, list_name: str, external_id: str) -> None:
        with self.wh.transaction():
            self.wh.execute(f"delete from {table('lists')} where sync = ? and list_name = ?", (sync, list_name))
            self.wh.execute(f"insert into {table('lists')} values (?, ?, ?, ?)",
                            (sync, list_name, external_id, utcnow()))

    def record_batch(self, run_id: str, sync: str, batch_no: int, op: str, sent: int,
                     acknowledged: Rows, rejected: dict[str, tuple[str, str]],
                     replaces_rows: bool = True) -> None:
        """Write one acknowledged batch, atomically (see record_batches)."""
        self.record_batches(run_id, sync, op, [BatchRecord(batch_no, sent, acknowledged, rejected)],
                            replaces_rows=replaces_rows)

    def record_batches(self, run_id: str, sync: str, op: str, batches: Sequence[BatchRecord],
                       replaces_rows: bool = True) -> None:
        """Write acknowledged batches of one op, each group atomically.

        op "remove" (and "retire": dropped from the ledger without a request, see the diff)
        deletes exactly the acknowledged identifiers, from `members` and `pending_removals`.
        "add"/"replace"/"adopt" (audiences) write the acknowledged identifiers; a member's
        older identifiers that are not acknowledged-removed move to `pending_removals`, so they
        are never forgotten. "update" (people) and "event" write rows by key. `rejected` maps
        key -> (reason, fingerprint); its attempt counter goes up by one.

        Batches whose keys are disjoint are written together, in one transaction with one
        staging insert and one set of statements (the statements, not the rows, are what a
        batch costs), and one `batches` row each: the result is the one of writing them in
        turn. A batch sharing a key with an earlier one, and every "replace", starts a new group.
        """
        for group in _disjoint_groups(op, batches):
            self._record_group(run_id, sync, op, group, replaces_rows)

    def _record_group(self, run_id: str, sync: str, op: str, batches: Sequence[BatchRecord],
                      replaces_rows: bool) -> None:
        now = utcnow()
        acknowledged = _concatenated([batch.acknowledged for batch in batches])
        keys = acknowledged[0]
        members, pending = table("members"), table("pending_removals")
        with self.wh.transaction():
            # When the members insert is the only statement reading the acknowledged rows (a
            # first sync's adds), it reads them straight from the parameters: no staging table.
            direct = (op not in ("remove", "retire") and not (replaces_rows and op != "replace")
                      and not (op in ("add", "adopt") and self._may_hold("pending_removals", sync))
                      and not self._may_hold("rejections", sync))
            if keys and not direct:
                self._stage(acknowledged)
            if op in ("remove", "retire"):
                if keys:
                    for target in (members, pending):
                        if target == members or self._may_hold("pending_removals", sync):
                            self.wh.execute(f"delete from {target} where sync = ? and fingerprint in "
                                            "(select fingerprint from pusher_acked)", (sync,))
            else:
                if op == "replace":
                    # The destination list now holds exactly this batch: forget anything older.
                    self.wh.execute(f"delete from {members} where sync = ?", (sync,))
                    self.wh.execute(f"delete from {pending} where sync = ?", (sync,))
                elif keys and replaces_rows:
                    if op in ("add", "adopt"):
                        self._may_hold_rows[("pending_removals", sync)] = True
                        self.wh.execute(
                            f"insert into {pending} select m.sync, m.member_key, m.email_sha256, m.phone_sha256, "
                            f"m.fingerprint, ?, ? from {members} as m join pusher_acked as a "
                            "on m.member_key = a.member_key and m.fingerprint <> a.fingerprint "
                            f"where m.sync = ? and not exists (select 1 from {pending} as p "
                            "where p.sync = m.sync and p.fingerprint = m.fingerprint)", (run_id, now, sync))
                    self.wh.execute(f"delete from {members} where sync = ? and member_key in "
                                    "(select member_key from pusher_acked)", (sync,))
                if keys:
                    if op in ("add", "adopt") and self._may_hold("pending_removals", sync):
                        # Sent again with identifiers still awaiting removal: they are current again.
                        self.wh.execute(f"delete from {pending} where sync = ? and fingerprint in "
                                        "(select fingerprint from pusher_acked)", (sync,))
                    source, params = ("pusher_acked", []) if not direct else self._acknowledged_sql(acknowledged)
                    self.wh.execute(
                        f"insert into {members} select ?, member_key, email_sha256, phone_sha256, payload_hash, "
                        f"payload_json, ?, ?, fingerprint from {source}", (sync, run_id, now, *params))
            if keys and not direct:
                if self._may_hold("rejections", sync):
                    self.wh.execute(f"delete from {table('rejections')} where sync = ? and member_key in "
                                    "(select member_key from pusher_acked)", (sync,))
                self.wh.execute("drop table pusher_acked")
            for batch in batches:
                if batch.rejected:
                    self._record_rejections(run_id, sync, op, batch.rejected, now)
            self.wh.execute(
                f"insert into {table('batches')} select ?, ?, unnest(cast(? as integer[])), ?, "
                "unnest(cast(? as integer[])), unnest(cast(? as integer[])), unnest(cast(? as integer[])), ?",
                (run_id, sync, [batch.batch_no for batch in batches], op, [batch.sent for batch in batches],
                 [len(batch.acknowledged) for batch in batches], [len(batch.rejected) for batch in batches], now))

    def _may_hold(self, name: str, sync: str) -> bool:
        """Whether table `name` may hold rows of `sync` (asked once, see _may_hold_rows)."""
        if (name, sync) not in self._may_hold_rows:
            self._may_hold_rows[(name, sync)] = self.wh.fetchone(
                f"select 1 from {table(name)} where sync = ? limit 1", (sync,)) is not None
        return self._may_hold_rows[(name, sync)]

    def _stage(self, columns: Columns) -> None:
        """The rows as a temp table `pusher_acked`, fingerprints computed by the warehouse."""
        self.wh.execute("create or replace temp table pusher_acked (member_key varchar, email_sha256 varchar, "
                        "phone_sha256 varchar, payload_hash varchar, payload_json varchar, fingerprint bigint)")
        source, params = self._acknowledged_sql(columns)
        self.wh.execute(f"insert into pusher_acked select * from {source}", params)

    def _acknowledged_sql(self, columns: Columns) -> tuple[str, list[Any]]:
        """The rows as a subquery of the Acknowledged columns and their fingerprint, and its parameters."""
        selected, params = [], []
        for name, values in zip(Acknowledged._fields, columns):
            if values is None:
                selected.append(f"cast(null as varchar) as {name}")
            else:
                expression, param = self.wh.strings_sql(values)
                selected.append(f"{expression} as {name}")
                params.append(param)
        return ("(select *, " + _stored_fingerprint_sql(self.wh) + " as fingerprint from (select "
                + ", ".join(selected) + "))"), params

    def _record_rejections(self, run_id: str, sync: str, op: str, rejected: dict[str, tuple[str, str]],
                           now: datetime) -> None:
        op = {"replace": "add", "adopt": "add", "retire": "remove"}.get(op, op)
        rejections = table("rejections")
        self._may_hold_rows[("rejections", sync)] = True
        keys = list(rejected)
        previous = dict(self.wh.fetchall(
            f"select member_key, attempts from {rejections} where sync = ? and op = ? and member_key in "
            "(select unnest(cast(? as varchar[])))", (sync, op, keys)))
        self.wh.execute(f"delete from {rejections} where sync = ? and op = ? and member_key in "
                        "(select unnest(cast(? as varchar[])))", (sync, op, keys))
        self.wh.insert_rows(rejections, ["sync", "member_key", "op", "fingerprint", "reason", "attempts",
                                         "last_run_id", "last_at"],
                            [(sync, key, op, fingerprint, redact(reason), previous.get(key, 0) + 1, run_id, now)
                             for key, (reason, fingerprint) in rejected.items()],
                            types=["varchar"] * 5 + ["integer", "varchar", "timestamp"])

    def rejections(self, sync: str, max_attempts: int | None = None, exhausted: bool | None = None,
                   limit: int = 20) -> list[dict[str, Any]]:
        sql = f"select member_key, op, reason, attempts from {table('rejections')} where sync = ?"
        params: list[Any] = [sync]
        if exhausted is not None and max_attempts is not None:
            sql += " and attempts >= ?" if exhausted else " and attempts < ?"
            params.append(max_attempts)
        rows = self.wh.fetchall(sql + " order by member_key, op limit ?", (*params, limit))
        return [dict(zip(("member_key", "op", "reason", "attempts"), row)) for row in rows]

    def forget_sync(self, sync: str) -> int:
        """Forget what one sync's destination list holds (its members, owed removals, rejections
        and remembered list id): the next sync treats the list as new, finds it by name or
        creates it, and fills it (guarded like any first sync). Returns the members forgotten."""
        with self.wh.transaction():
            count = self.member_count(sync)
            for name in ("members", "pending_removals", "rejections", "lists"):
                self.wh.execute(f"delete from {table(name)} where sync = ?", (sync,))
        return count

    def renamed_from(self, sync: str, list_name: str) -> str | None:
        """The list name this sync filled before, when it now has another one."""
        rows = self.wh.fetchall(f"select list_name from {table('lists')} where sync = ? order by recorded_at desc",
                                (sync,))
        names = [row[0] for row in rows]
        return names[0] if names and list_name not in names else None

    def reset_exhausted(self, sync: str, max_attempts: int, key: str | None = None) -> int:
        """Forget the rejections of rows whose retries are spent (one key, or all of the sync),
        so the next run sends them again, with max_attempts fresh attempts. Returns how many."""
        where = "sync = ? and attempts >= ?" + (" and member_key = ?" if key is not None else "")
        params = (sync, max_attempts, *([key] if key is not None else []))
        with self.wh.transaction():
            count = int(self.wh.fetchone(f"select count(*) from {table('rejections')} where {where}", params)[0])
            self.wh.execute(f"delete from {table('rejections')} where {where}", params)
        return count

    def rejection_counts(self, sync: str, max_attempts: int) -> tuple[int, int]:
        """(pending retries, exhausted) for one sync."""
        row = self.wh.fetchone(
            f"select coalesce(sum(case when attempts < ? then 1 else 0 end), 0), "
            f"coalesce(sum(case when attempts >= ? then 1 else 0 end), 0) from {table('rejections')} where sync = ?",
            (max_attempts, max_attempts, sync))
        return int(row[0]), int(row[1])

    def members(self, sync: str) -> Iterable[tuple]:
        """All ledger rows of one sync (tests and reconcile checks)."""
        return self.wh.fetchall(f"select member_key, email_sha256, phone_sha256, payload_hash, payload_json "
                                f"from {table('members')} where sync = ? order by member_key", (sync,))
