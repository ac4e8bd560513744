"""The diff, as SQL run in the warehouse, plus the few pure decisions made per row.

Audience syncs compare the model (the snapshot) with the ledger (what the destination
acknowledged) by one 64-bit integer per row, the fingerprint of (key, email_sha256,
phone_sha256) (pusher.ledger.audience_fingerprint_sql): never by the 64-character strings.
Audience models built with macros/member_fingerprint.sql carry it as the column
`member_fingerprint`, so the pusher reads 8 bytes per member; models without it (or whose
values disagree with the pusher's, see fingerprint_check) have it computed here, slower.
  1. an order-independent aggregate of the snapshot's fingerprints (count, bit_xor) equal to
     the ledger's means no change at all: the common case ends here, without a join;
  2. otherwise one full outer join on the fingerprints finds the rows on one side only, and
     only those rows (about 1%) are fetched back with their strings (by rowid) into a work
     table: counts, samples and the send batches all read that small table.
A member whose email hash changed is removed with the old hashes and added with the new
ones. People syncs compare a hash of the attribute payload; events are append-only (ids not
yet acknowledged). Every method here returns (sql, params); nothing is executed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from pusher.config import SyncDefinition
from pusher.ledger import audience_fingerprint_sql, people_fingerprint_sql, table
from pusher.timeconv import to_wire
from pusher.warehouse import Warehouse, qualified, quote_ident

Query = tuple[str, list[Any]]
KEY = {"audience": "customer_id", "people": "customer_id", "events": "event_id", "objects": "object_id"}
FP_DIFF = qualified("temp", "main", "pusher_fp_diff")   # fingerprints found on one side only
FINGERPRINT_COLUMN = "member_fingerprint"   # audience models: see macros/member_fingerprint.sql
FINGERPRINT_SAMPLE_ROWS = 2048
EVENT_FIXED = ("event_id", "customer_id", "event_name", "occurred_at")


@dataclass(frozen=True)
class DiffSql:
    """SQL for one sync. `required` is the destination's required_identifier."""

    wh: Warehouse
    sync: SyncDefinition
    required: str = "key"
    attribute_columns: tuple[str, ...] = ()   # people: every column but customer_id; events: the data columns
    stored_fingerprint: bool = False          # audiences: read the model's member_fingerprint column
    temporary_work: bool = False              # plan only: the work table need not outlive the connection
    json_columns: tuple[str, ...] = ()         # JSON-typed attribute columns: their text is parsed before sending
    people_sources: tuple[SyncDefinition, ...] = ()   # audiences: a new member waits until one made its person
    first_fill: bool = False                  # audiences: the ledger holds nothing of this sync (see first_fill_due)

    @property
    def key_column(self) -> str:
        return KEY[self.sync.kind]

    @property
    def relation(self) -> str:
        return qualified(*self.sync.relation)

    # -- audiences: fingerprints -------------------------------------------------------------
    @property
    def work(self) -> str:
        """The slow path's work table: only the rows that differ, with their strings. For a
        delivery, a real table, so that the streamed batches can read it on their own cursor;
        for a plan alone, a temp one (no write to the database file)."""
        if self.temporary_work:
            return qualified("temp", "main", f"pusher_work__{self.sync.name}")
        return table(f"diff__{self.sync.name}")

    def _where_required(self, alias: str) -> str:
        return "" if self.required == "key" else f"{alias}.{quote_ident(self.required)} is not null"

    def computed_fingerprint(self, alias: str) -> str:
        return audience_fingerprint_sql(self.wh, f"cast({alias}.customer_id as varchar)", f"{alias}.email_sha256",
                                        f"{alias}.phone_sha256")

    def snapshot_fingerprint(self, alias: str) -> str:
        if self.stored_fingerprint:
            return f"{alias}.{FINGERPRINT_COLUMN}"
        return self.computed_fingerprint(alias)

    def fingerprint_check(self) -> Query:
        """Rows whose stored member_fingerprint is NULL (anywhere) or differs from the pusher's
        own (among the first rows): a model built by another engine version, or not with the
        macro. A few thousand rows suffice, as such a difference is the same for every row;
        the rows to add are all checked again in work_validation."""
        stored, computed = f"s.{FINGERPRINT_COLUMN}", self.computed_fingerprint("s")
        return (f"select (select count(*) from {self.relation} where {FINGERPRINT_COLUMN} is null), "
                f"(select count(*) from (select * from {self.relation} limit {FINGERPRINT_SAMPLE_ROWS}) as s "
                f"where {stored} is distinct from {computed})"), []

    def snapshot_aggregate(self) -> Query:
        """count and bit_xor of the rows to sync: order-independent; with a ledger unique per
        key, equal values mean equal sets (a duplicate or NULL key, or any changed row, changes
        them, but for a ~2^-63 chance). Also the model's row count, for rows skipped for lack
        of an identifier, and its NULL keys (refused even on rows that would be skipped)."""
        fingerprint = self.snapshot_fingerprint("s")
        where = self._where_required("s")
        only = f" filter (where {where})" if where else ""
        return (f"select count(*){only}, bit_xor({fingerprint}){only}, count(*), count(*) - count(s.customer_id) "
                f"from {self.relation} as s"), []

    def ledger_aggregate(self) -> Query:
        return (f"select count(*), bit_xor(fingerprint), (select count(*) from {table('pending_removals')} "
                f"where sync = ?) from {table('members')} where sync = ?"), [self.sync.name, self.sync.name]

    def first_fill_due(self) -> Query:
        """Rows that would keep a row of the model from being a plain add, besides the ledger's
        members and pending removals (counted by ledger_aggregate): rejections spent for
        this sync. With none of them, every row to sync is an add (or waits for its person):
        no join, no work table, the adds are read straight from the model."""
        return (f"select count(*) from {table('rejections')} where sync = ? and attempts >= ?"), [
            self.sync.name, self.sync.max_row_attempts]

    def first_fill_validation(self) -> Query:
        """work_validation and the duplicate check over the model's rows to sync, for a first
        fill (every such row is an add): NULL keys, identifiers that are not SHA-256 hex, stored
        fingerprints that are not the pusher's, keys held more than once; then the rows that
        wait for their person (hold_for_people)."""
        where = self._where_required("s")
        checks = ["count(*) - count(s.customer_id)"]
        for column in ("email_sha256", "phone_sha256"):
            checks.append(f"count(*) filter (where s.{column} is not null and not "
                          f"{self.wh.is_sha256_hex_sql('s.' + column)})")
        checks.append(f"count(*) filter (where s.{FINGERPRINT_COLUMN} is distinct from "
                      f"{self.computed_fingerprint('s')})" if self.stored_fingerprint else "0")
        checks.append("count(s.customer_id) - count(distinct s.customer_id)")
        params: list[Any] = []
        if self.people_sources:
            known, params = known_people_sql(self.people_sources)
            checks.append(f"count(*) filter (where cast(s.customer_id as varchar) not in ({known}))")
        else:
            checks.append("0")
        return (f"select {', '.join(checks)} from {self.relation} as s{' where ' + where if where else ''}"), params

    def first_fill_example(self, problem: str) -> Query:
        """One offending row of a first fill, named as work_example names it."""
        if problem != "bad_member_fingerprint":
            return self.example_of(problem)
        where = self._where_required("s")
        return (f"select s.customer_id, s.{FINGERPRINT_COLUMN} from {self.relation} as s "
                f"where {where + ' and ' if where else ''}s.{FINGERPRINT_COLUMN} is distinct from "
                f"{self.computed_fingerprint('s')} order by s.customer_id limit 1"), []

    def stage_fingerprint_diff(self, by_rowid: bool) -> Query:
        where = self._where_required("s")
        rowid = "s.rowid" if by_rowid else "cast(null as bigint)"
        return (f"create or replace temp table {FP_DIFF} as "
                "select s.r, s.fingerprint as snapshot_fp, l.fingerprint as ledger_fp from "
                f"(select {rowid} as r, {self.snapshot_fingerprint('s')} as fingerprint from {self.relation} as s"
                f"{' where ' + where if where else ''}) as s full outer join "
                f"(select fingerprint from {table('members')} where sync = ?) as l on s.fingerprint = l.fingerprint "
                "where s.fingerprint is null or l.fingerprint is null"), [self.sync.name]

    def build_work(self, by_rowid: bool) -> Query:
        """The differing rows, with their strings. Columns: op ('add'|'remove'), member_key,
        email_sha256, phone_sha256, fingerprint, pending (an older identifier set awaiting
        removal), in_ledger (adds: the key is in the ledger with other identifiers), exhausted
        (rejected max_row_attempts times), send (removes: False = drop from the ledger only)."""
        name = self.sync.name
        if by_rowid:
            fetch = f"s.rowid in (select r from {FP_DIFF} where r is not null)"
        else:
            fetch = (f"{self.snapshot_fingerprint('s')} in "
                     f"(select snapshot_fp from {FP_DIFF} where snapshot_fp is not null)")
        required = self._where_required("s")
        fetch += f" and {required}" if required else ""
        exhausted = ("exists (select 1 from exhausted as x where x.op = '{op}' and x.member_key = {a}.member_key "
                     "and x.fingerprint = coalesce({a}.email_sha256, '') || '/' || coalesce({a}.phone_sha256, ''))")
        params: list[Any] = [name, name, name, name, self.sync.max_row_attempts]
        if self.required == "email_sha256":
            # A list keyed by the hash holds it once, whoever brought it: a hash another member
            # keeps (or is being added with) must stay; the leaving row is only dropped from the ledger.
            send = (f"not exists (select 1 from adds as a where a.email_sha256 = g.email_sha256) and not exists "
                    f"(select 1 from {table('members')} as m where m.sync = ? and m.email_sha256 = g.email_sha256 "
                    "and m.fingerprint not in (select fingerprint from gone))")
            params.append(name)
        else:
            send = "true"
        sql = f"""create or replace {'temp ' if self.temporary_work else ''}table {self.work} as
        with adds as materialized (
            select cast(s.customer_id as varchar) as member_key, s.email_sha256, s.phone_sha256,
                   {self.snapshot_fingerprint('s')} as fingerprint
            from {self.relation} as s where {fetch}
        ), gone as materialized (
            select member_key, email_sha256, phone_sha256, fingerprint, false as pending
            from {table('members')} where sync = ?
              and rowid in (  -- two steps: the strings are read for the matching rows only
                  select rowid from {table('members')} where fingerprint in
                      (select ledger_fp from {FP_DIFF} where ledger_fp is not null))
            union all
            select member_key, email_sha256, phone_sha256, fingerprint, true as pending
            from {table('pending_removals')} as p where sync = ?
              and fingerprint not in (  -- probe the snapshot with the few pending rows, not the reverse
                  select {self.snapshot_fingerprint('s')} from {self.relation} as s where
                      {self.snapshot_fingerprint('s')} in
                      (select fingerprint from {table('pending_removals')} where sync = ?))
        ), exhausted as (
            select member_key, op, fingerprint from {table('rejections')} where sync = ? and attempts >= ?
        )
        select 'add' as op, a.member_key, a.email_sha256, a.phone_sha256, a.fingerprint, false as pending,
               exists (select 1 from gone as g where not g.pending and g.member_key = a.member_key) as in_ledger,
               {exhausted.format(op='add', a='a')} as exhausted, true as send
        from adds as a
        union all
        select 'remove', g.member_key, g.email_sha256, g.phone_sha256, g.fingerprint, g.pending, true,
               {exhausted.format(op='remove', a='g')}, {send}
        from gone as g"""
        return sql, params

    def readds(self) -> Query:
        """Key-keyed destinations (Customer.io segments) drop a member on any remove of its key:
        a member whose older identifiers are removed now is added again, with its current ones."""
        return (f"""insert into {self.work}
            select 'add', m.member_key, m.email_sha256, m.phone_sha256, m.fingerprint, false, true, false, true
            from {table('members')} as m where m.sync = ?
              and m.member_key in (select member_key from {self.work} where op = 'remove' and pending and send
                                   and not exhausted)
              and m.fingerprint not in (select fingerprint from {self.work} where op = 'remove')
              and m.member_key not in (select member_key from {self.work} where op = 'add')"""), [self.sync.name]

    def refresh_due(self, before: Any) -> Query:
        """Members last acknowledged before `before`: their membership expires soon (see Destination)."""
        return (f"select count(*) from {table('members')} where sync = ? and acknowledged_at < ?"), [
            self.sync.name, before]

    def add_refreshes(self, before: Any) -> Query:
        """Unchanged members due for a refresh, re-added as they are (op 'refresh'; after the
        duplicate checks, which they would trip, being in the ledger on purpose)."""
        return (f"""insert into {self.work}
            select 'refresh', m.member_key, m.email_sha256, m.phone_sha256, m.fingerprint, false, true, false, true
            from {table('members')} as m where m.sync = ? and m.acknowledged_at < ?
              and m.fingerprint not in (select fingerprint from {self.work} where op = 'remove')
              and m.member_key not in (select member_key from {self.work}
                                       where op = 'add' and member_key is not null)"""), [self.sync.name, before]

    def refresh_count(self) -> Query:
        return f"select count(*) from {self.work} where op = 'refresh'", []

    def hold_for_people(self) -> Query:
        """A destination that ignores memberships of people it does not know (Customer.io): a
        new member whose person it has not acknowledged yet waits (op 'wait'): it is neither
        sent nor recorded, and is added on the first run after its person's."""
        known, params = known_people_sql(self.people_sources)
        return (f"update {self.work} set op = 'wait' where op = 'add' and not in_ledger and member_key not in "
                f"({known})"), params

    def waiting_count(self) -> Query:
        return f"select count(*) from {self.work} where op = 'wait'", []

    def work_validation(self) -> Query:
        """Malformed rows among the rows to add (all others are in the ledger, so were checked
        when sent): NULL keys and identifiers that are not SHA-256 hex."""
        checks = ["count(*) filter (where member_key is null) as null_keys"]
        for column in ("email_sha256", "phone_sha256"):
            checks.append(f"count(*) filter (where {column} is not null and not "
                          f"{self.wh.is_sha256_hex_sql(column)}) as bad_{column}")
        # Stored fingerprints of the rows to add must be the pusher's own: the ledger keeps the
        # latter, so a differing one would make the row look changed on every run.
        checks.append(f"count(*) filter (where fingerprint is distinct from {audience_fingerprint_sql(self.wh)})"
                      if self.stored_fingerprint else "0")
        return f"select {', '.join(checks)} from {self.work} where op = 'add'", []

    def work_example(self, problem: str) -> Query:
        if problem == "null_keys":
            return f"select null, email_sha256 from {self.work} where op = 'add' and member_key is null limit 1", []
        if problem == "bad_member_fingerprint":
            return (f"select member_key, fingerprint from {self.work} where op = 'add' and fingerprint is distinct "
                    f"from {audience_fingerprint_sql(self.wh)} order by member_key limit 1"), []
        column = problem[4:]
        return (f"select member_key, {column} from {self.work} where op = 'add' and {column} is not null and not "
                f"{self.wh.is_sha256_hex_sql(column)} order by member_key limit 1"), []

    def duplicate_in_work(self) -> Query:
        """A key added twice, or added while the ledger row of that key still matches another
        snapshot row: both mean the model holds that key more than once."""
        return (f"""select member_key from (
                select member_key from {self.work} where op = 'add' group by member_key having count(*) > 1
                union all
                select a.member_key from {self.work} as a
                join {table('members')} as m on m.sync = ? and m.member_key = a.member_key
                where a.op = 'add' and m.fingerprint not in
                    (select fingerprint from {self.work} where op = 'remove' and not pending))
            order by member_key limit 1"""), [self.sync.name]

    def work_counts(self) -> Query:
        return (f"""select
                count(*) filter (where op = 'add' and not exhausted),
                count(*) filter (where op = 'remove' and send and not exhausted),
                count(*) filter (where op = 'remove' and not send and not exhausted),
                count(*) filter (where op = 'add' and in_ledger),
                count(*) filter (where op = 'remove' and not pending and not exhausted and member_key not in
                                 (select member_key from {self.work} where op = 'add' and member_key is not null)),
                count(*) filter (where exhausted),
                count(*) filter (where op = 'remove' and pending and not exhausted),
                count(*) filter (where op = 'add'),
                count(*) filter (where op = 'remove' and not pending)
            from {self.work}"""), []

    def cleanup(self) -> list[str]:
        return [f"drop table if exists {self.work}", f"drop table if exists {FP_DIFF}"]

    def _people_ctes(self) -> Query:
        columns = ", ".join(f"src.{quote_ident(column)}" for column in self.attribute_columns)
        sql = f"""with snapshot as (
            select cast(src.{KEY[self.sync.kind]} as varchar) as member_key,
                   {self.wh.payload_hash_sql(self.attribute_columns, 'src')} as payload_hash{', ' + columns if columns else ''}
            from {self.relation} as src
        ), ledger as (
            select member_key, payload_hash, payload_json from {table('members')} where sync = ?
        ), exhausted as (
            select member_key, fingerprint from {table('rejections')} where sync = ? and op = 'update' and attempts >= ?
        )"""
        return sql, [self.sync.name, self.sync.name, self.sync.max_row_attempts]

    # -- validation ----------------------------------------------------------------------------
    def validation(self) -> Query:
        """One pass over the model counting every kind of malformed row."""
        key = KEY[self.sync.kind]
        checks = [f"count(*) - count({key}) as null_keys",
                  f"count({key}) - count(distinct {key}) as duplicate_keys"]
        if self.sync.kind == "audience":
            for column in ("email_sha256", "phone_sha256"):
                checks.append(f"sum(case when {column} is not null and not "
                              f"{self.wh.is_sha256_hex_sql(column)} then 1 else 0 end) as bad_{column}")
            skipped = "0" if self.required == "key" else f"count(*) - count({quote_ident(self.required)})"
            checks.append(f"{skipped} as skipped")
        elif self.sync.kind == "events":
            for column in ("customer_id", "event_name", "occurred_at"):
                checks.append(f"count(*) - count({column}) as null_{column}")
        return f"select count(*) as total_rows, {', '.join(checks)} from {self.relation}", []

    def example_of(self, problem: str) -> Query:
        """One offending row's key, to name it in the error."""
        key = KEY[self.sync.kind]
        if problem == "null_keys":
            # The key is NULL, so name the row by another column of the contract.
            hint = {"audience": "email_sha256", "people": "email", "events": "customer_id",
                    "objects": "customer_id"}[self.sync.kind]
            return f"select null, {hint} from {self.relation} where {key} is null limit 1", []
        if problem == "duplicate_keys":
            return (f"select {key}, count(*) from {self.relation} group by {key} having count(*) > 1 "
                    f"order by {key} limit 1"), []
        if problem.startswith("bad_"):
            column = problem[4:]
            return (f"select {key}, {column} from {self.relation} where {column} is not null and not "
                    f"{self.wh.is_sha256_hex_sql(column)} order by {key} limit 1"), []
        column = problem[5:]  # null_<column>
        return f"select {key} from {self.relation} where {column} is null order by {key} limit 1", []

    # -- counts (the plan) ---------------------------------------------------------------------
    def counts(self) -> Query:
        if self.sync.kind in ("people", "objects"):   # objects are diffed like people, by object_id
            ctes, params = self._people_ctes()
            sql = f"""{ctes}
            select
                sum(case when s.member_key is not null then 1 else 0 end) as audience_size,
                sum(case when l.member_key is not null then 1 else 0 end) as ledger_size,
                sum(case when l.member_key is null and x.member_key is null then 1 else 0 end) as new_people,
                sum(case when l.member_key is not null and s.member_key is not null and x.member_key is null
                          and l.payload_hash is distinct from s.payload_hash then 1 else 0 end) as changed_people,
                sum(case when s.member_key is null then 1 else 0 end) as departed_people,
                sum(case when x.member_key is not null then 1 else 0 end) as exhausted
            from snapshot as s
            full outer join ledger as l on s.member_key = l.member_key
            left join exhausted as x on s.member_key = x.member_key and x.fingerprint = s.payload_hash"""
            return sql, params
        sql = f"""select count(*) as audience_size,
                sum(case when l.member_key is not null then 1 else 0 end) as ledger_size,
                sum(case when l.member_key is null and x.member_key is null then 1 else 0 end) as new_events,
                sum(case when x.member_key is not null then 1 else 0 end) as exhausted
            from {self.relation} as e
            left join (select member_key from {table('members')} where sync = ?) as l
                on l.member_key = cast(e.event_id as varchar)
            left join (select member_key from {table('rejections')} where sync = ? and attempts >= ?) as x
                on x.member_key = cast(e.event_id as varchar) and l.member_key is null"""
        return sql, [self.sync.name, self.sync.name, self.sync.max_row_attempts]

    # -- the rows to send ----------------------------------------------------------------------
    def removes(self, limit: int | None = None) -> Query:
        """Identifiers to remove, exactly as they were added; `send` False: drop from the ledger only."""
        if self.first_fill:
            return ("select cast(null as varchar), cast(null as varchar), cast(null as varchar), true "
                    "where false"), []
        sql = (f"select member_key, email_sha256, phone_sha256, send from {self.work} "
               "where op = 'remove' and not exhausted")
        if limit is not None:
            return f"{sql} and send order by member_key, fingerprint limit ?", [limit]
        return f"{sql} order by member_key, fingerprint", []

    def adds(self, limit: int | None = None) -> Query:
        """Rows to add; `in_ledger` says an older row must be replaced on acknowledgement. A first
        fill streams them from the model in its own order (a sort of every row would hold back
        the first batch); only samples are sorted."""
        if self.first_fill:
            where, params = self._where_required("s"), []
            if self.people_sources:        # the others wait for their person (hold_for_people)
                known, params = known_people_sql(self.people_sources)
                where = (where + " and " if where else "") + f"cast(s.customer_id as varchar) in ({known})"
            sql = (f"select cast(s.customer_id as varchar) as member_key, s.email_sha256, s.phone_sha256, "
                   f"false as in_ledger from {self.relation} as s{' where ' + where if where else ''}")
            return _limited(sql, params, limit, "member_key")
        sql = (f"select member_key, email_sha256, phone_sha256, in_ledger from {self.work} "
               "where op in ('add', 'refresh') and not exhausted order by member_key")
        return (f"{sql} limit ?", [limit]) if limit is not None else (sql, [])

    def people_aggregate(self) -> Query:
        """(count, bit_xor of fingerprints) of the people model, as for audiences."""
        fingerprint = people_fingerprint_sql(self.wh, f"cast(src.{KEY[self.sync.kind]} as varchar)",
                                             self.wh.payload_hash_sql(self.attribute_columns, "src"))
        return f"select count(*), bit_xor({fingerprint}) from {self.relation} as src", []

    def ledger_people_aggregate(self) -> Query:
        return (f"select count(*), bit_xor(fingerprint) from {table('members')} where sync = ?"), [self.sync.name]

    def people_updates(self, limit: int | None = None) -> Query:
        ctes, params = self._people_ctes()
        columns = "".join(f", s.{quote_ident(column)}" for column in self.attribute_columns)
        sql = f"""{ctes}
        select s.member_key, s.payload_hash, l.payload_json, l.member_key is not null as in_ledger{columns}
        from snapshot as s
        left join ledger as l on l.member_key = s.member_key
        where (l.member_key is null or l.payload_hash is distinct from s.payload_hash)
          and not exists (select 1 from exhausted as x where x.member_key = s.member_key
                          and x.fingerprint = s.payload_hash)"""
        return _limited(sql, params, limit, "s.member_key")

    def new_events(self, limit: int | None = None) -> Query:
        data = "".join(f", e.{quote_ident(column)}" for column in self.attribute_columns)
        sql = f"""select cast(e.event_id as varchar) as member_key, cast(e.customer_id as varchar) as customer_id,
                e.event_name, e.occurred_at{data}
            from {self.relation} as e
            where not exists (select 1 from {table('members')} as l
                              where l.sync = ? and l.member_key = cast(e.event_id as varchar))
              and not exists (select 1 from {table('rejections')} as x where x.sync = ? and x.op = 'event'
                              and x.attempts >= ? and x.member_key = cast(e.event_id as varchar))"""
        return _limited(sql, [self.sync.name, self.sync.name, self.sync.max_row_attempts], limit, "e.event_id")


def known_people_sql(sources: Sequence[SyncDefinition]) -> Query:
    """Keys of the people the destination acknowledged: an identify of a people sync, or an
    event of an events sync (Customer.io creates the person an event names when it is missing:
    https://docs.customer.io/api/track/#operation/batch). A select of one column, member_key."""
    people = [sync.name for sync in sources if sync.kind == "people"]
    parts, params = [], []
    if people:
        parts.append(f"select member_key from {table('members')} where sync in ({', '.join('?' for _ in people)})")
        params += people
    for sync in sources:
        if sync.kind == "events":
            parts.append(f"select cast(e.customer_id as varchar) from {qualified(*sync.relation)} as e "
                         f"join {table('members')} as l on l.sync = ? and l.member_key = cast(e.event_id as varchar) "
                         "where e.customer_id is not null")
            params.append(sync.name)
    return " union all ".join(parts) or "select cast(null as varchar) where false", params


def _limited(sql: str, params: list[Any], limit: int | None, order: str) -> Query:
    if limit is None:
        return sql, params
    return f"{sql} order by {order} limit ?", [*params, limit]


# -- pure per-row decisions -------------------------------------------------------------------
def changed_attributes(current: Mapping[str, Any], acknowledged: Mapping[str, Any] | None) -> dict[str, Any]:
    """The attributes to send for one person.

    `current` is the model row (wire values), `acknowledged` what the destination last
    acknowledged (None for a new person). A NULL is sent (as an explicit clear) only where a
    value was acknowledged before; a never-sent NULL is never sent.
    """
    previous = acknowledged or {}
    changes: dict[str, Any] = {}
    for name, value in current.items():
        if value is None:
            if previous.get(name) is not None:
                changes[name] = None
        elif name not in previous or previous[name] != value or type(previous[name]) is not type(value):
            changes[name] = value
    return changes


def state_time(*rows: Mapping[str, Any] | None) -> int | None:
    """The state time of a people row: its latest `updated_at` / `<attr>_updated_at` value (wire
    Unix seconds), or None when it has none. All of them, not only the changed ones, and of the
    acknowledged row too (pass it second): the time sent for a person then never goes back, even if
    a timestamp column turns NULL, so the destination never keeps an older value over a newer one."""
    times = [value for row in rows for name, value in (row or {}).items()
             if (name == "updated_at" or name.endswith("_updated_at"))
             and isinstance(value, int) and not isinstance(value, bool)]
    return max(times) if times else None


def wire_row(columns: Sequence[str], values: Sequence[Any], json_columns: Sequence[str] = ()) -> dict[str, Any]:
    """Wire values of one row. STRUCT/LIST/MAP values arrive as dicts and lists already; a JSON
    column arrives as its text, so it is parsed into the nested value it holds."""
    row = {}
    for column, value in zip(columns, values):
        if column in json_columns and isinstance(value, str):
            value = json.loads(value)
        row[column] = to_wire(value)
    return row


def payload_json(attributes: Mapping[str, Any]) -> str:
    return json.dumps(attributes, sort_keys=True, separators=(",", ":"))
