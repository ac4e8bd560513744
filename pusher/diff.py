"""The diff, as SQL run in the warehouse, plus the few pure decisions made per row.

Audience syncs compare the model (the snapshot) with the ledger (what the destination
acknowledged) on the member key *and* the identifiers sent: a member whose email hash
changed is removed with the old hashes and added with the new ones. People syncs compare a
hash of the attribute payload; events are append-only (ids not yet acknowledged).
Every function here returns (sql, params); nothing is executed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from pusher.config import SyncDefinition
from pusher.ledger import table
from pusher.timeconv import to_wire
from pusher.warehouse import Warehouse, qualified, quote_ident

Query = tuple[str, list[Any]]
KEY = {"audience": "customer_id", "people": "customer_id", "events": "event_id"}
EVENT_FIXED = ("event_id", "customer_id", "event_name", "occurred_at")


def _fingerprint_sql(alias: str) -> str:
    return f"coalesce({alias}.email_sha256, '') || '/' || coalesce({alias}.phone_sha256, '')"


@dataclass(frozen=True)
class DiffSql:
    """SQL for one sync. `required` is the destination's required_identifier."""

    wh: Warehouse
    sync: SyncDefinition
    required: str = "key"
    attribute_columns: tuple[str, ...] = ()   # people: every column but customer_id; events: the data columns

    @property
    def relation(self) -> str:
        return qualified(*self.sync.relation)

    # -- shared pieces -------------------------------------------------------------------------
    def _audience_ctes(self) -> Query:
        where = "" if self.required == "key" else f"where {quote_ident(self.required)} is not null"
        sql = f"""with snapshot as (
            select cast(customer_id as varchar) as member_key, email_sha256, phone_sha256
            from {self.relation} {where}
        ), ledger as (
            select member_key, email_sha256, phone_sha256 from {table('members')} where sync = ?
        ), exhausted as (
            select member_key, op, fingerprint from {table('rejections')} where sync = ? and attempts >= ?
        )"""
        return sql, [self.sync.name, self.sync.name, self.sync.max_row_attempts]

    def _same_ids(self, left: str, right: str) -> str:
        return (f"{left}.email_sha256 is not distinct from {right}.email_sha256 and "
                f"{left}.phone_sha256 is not distinct from {right}.phone_sha256")

    def _people_ctes(self) -> Query:
        columns = ", ".join(f"src.{quote_ident(column)}" for column in self.attribute_columns)
        sql = f"""with snapshot as (
            select cast(src.customer_id as varchar) as member_key,
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
            hint = {"audience": "email_sha256", "people": "email", "events": "customer_id"}[self.sync.kind]
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
        if self.sync.kind == "audience":
            ctes, params = self._audience_ctes()
            sql = f"""{ctes}
            select
                sum(case when s.member_key is not null then 1 else 0 end) as audience_size,
                sum(case when l.member_key is not null then 1 else 0 end) as ledger_size,
                sum(case when l.member_key is null and xa.member_key is null then 1 else 0 end) as new_members,
                sum(case when s.member_key is null and xr.member_key is null then 1 else 0 end) as departures,
                sum(case when s.member_key is not null and l.member_key is not null
                          and not ({self._same_ids('s', 'l')}) then 1 else 0 end) as identifier_changes,
                sum(case when xa.member_key is not null or xr.member_key is not null then 1 else 0 end) as exhausted
            from snapshot as s
            full outer join ledger as l on s.member_key = l.member_key
            left join exhausted as xa on xa.op = 'add' and s.member_key = xa.member_key
                and xa.fingerprint = {_fingerprint_sql('s')}
            left join exhausted as xr on xr.op = 'remove' and s.member_key is null and l.member_key = xr.member_key
                and xr.fingerprint = {_fingerprint_sql('l')}"""
            return sql, params
        if self.sync.kind == "people":
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
        """Ledger rows the destination holds but the snapshot does not (same key and ids):
        sent with the ledger's identifiers, exactly as they were added."""
        ctes, params = self._audience_ctes()
        sql = f"""{ctes}
        select l.member_key, l.email_sha256, l.phone_sha256
        from ledger as l
        where not exists (select 1 from snapshot as s where s.member_key = l.member_key and {self._same_ids('s', 'l')})
          and not exists (select 1 from exhausted as x where x.op = 'remove' and x.member_key = l.member_key
                          and x.fingerprint = {_fingerprint_sql('l')})"""
        return _limited(sql, params, limit, "l.member_key")

    def adds(self, limit: int | None = None) -> Query:
        """Snapshot rows the ledger lacks (or holds with other identifiers); `in_ledger`
        says an older row must be replaced on acknowledgement."""
        ctes, params = self._audience_ctes()
        sql = f"""{ctes}
        select s.member_key, s.email_sha256, s.phone_sha256, l.member_key is not null as in_ledger
        from snapshot as s
        left join ledger as l on l.member_key = s.member_key
        where (l.member_key is null or not ({self._same_ids('s', 'l')}))
          and not exists (select 1 from exhausted as x where x.op = 'add' and x.member_key = s.member_key
                          and x.fingerprint = {_fingerprint_sql('s')})"""
        return _limited(sql, params, limit, "s.member_key")

    def departed_keys_count(self) -> Query:
        """Members that would leave the destination (not counting identifier changes)."""
        ctes, params = self._audience_ctes()
        return (f"{ctes} select count(*) from ledger as l "
                "where not exists (select 1 from snapshot as s where s.member_key = l.member_key)"), params

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


def wire_row(columns: Sequence[str], values: Sequence[Any]) -> dict[str, Any]:
    return {column: to_wire(value) for column, value in zip(columns, values)}


def payload_json(attributes: Mapping[str, Any]) -> str:
    return json.dumps(attributes, sort_keys=True, separators=(",", ":"))
