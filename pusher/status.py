"""`pusher status` and `pusher history`: read the ledger's run records (nothing is sent)."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from pusher import cadence
from pusher.config import Project
from pusher.diff import known_people_sql
from pusher.destinations import registry
from pusher.errors import PusherError
from pusher.guards import ancestors
from pusher.ledger import Ledger, table, utcnow
from pusher.warehouse import Warehouse, qualified

SYNC_RUN_FIELDS = ("run_id", "sync", "status", "exit_code", "audience_size", "ledger_size", "adds", "removes",
                   "updates", "events", "rejected", "skipped", "message", "started_at", "finished_at")


def _iso(value: Any) -> Any:
    return value.replace(tzinfo=timezone.utc).isoformat() if isinstance(value, datetime) else value


def _source_freshness(project: Project, model_id: str) -> list[dict[str, Any]]:
    path = project.target_path / "sources.json"
    if not path.exists():
        return []
    try:
        results = json.loads(path.read_text()).get("results") or []
    except json.JSONDecodeError:
        return []
    lineage = ancestors(model_id, project.parent_map)
    return [{"source": r.get("unique_id"), "status": r.get("status"), "max_loaded_at": r.get("max_loaded_at"),
             "age_seconds": r.get("max_loaded_at_time_ago_in_s")}
            for r in results if r.get("unique_id") in lineage]


source_freshness = _source_freshness   # public name, for alerts


def membership_refresh(wh: Warehouse, sync, env: Mapping[str, str]) -> dict[str, Any]:
    """For destinations whose members expire: how many are due for a refresh, and when the next is."""
    try:
        after = registry.destination_class(sync.destination).refresh_after_days(env)
    except PusherError as exc:
        return {"refresh_after_days": None, "refresh_problem": str(exc)}
    if after is None:
        return {"refresh_after_days": None}
    cutoff = utcnow() - timedelta(days=after)
    due, oldest = wh.fetchone(f"select count(*) filter (where acknowledged_at < ?), min(acknowledged_at) "
                              f"from {table('members')} where sync = ?", (cutoff, sync.name))
    return {"refresh_after_days": after, "refresh_due": int(due or 0),
            "next_refresh_at": _iso(oldest + timedelta(days=after)) if oldest else None}


def waiting_for_people(project: Project, wh: Warehouse, sync) -> int | None:
    """Audience members not delivered because no people sync has had their person acknowledged
    (destinations that ignore unknown people; see DiffSql.hold_for_people). None: not applicable."""
    sources = [other for other in project.syncs
               if other.kind in ("people", "events") and other.destination == sync.destination]
    if sync.kind != "audience" or not sources or not registry.destination_class(sync.destination).needs_known_people:
        return None
    known, params = known_people_sql(sources)
    try:
        return int(wh.fetchone(
            f"select count(*) from {qualified(*sync.relation)} as s where not exists (select 1 from {table('members')} "
            "as m where m.sync = ? and m.member_key = cast(s.customer_id as varchar)) and cast(s.customer_id as "
            f"varchar) not in ({known})", (sync.name, *params))[0])
    except Exception:  # the model may not be built yet
        return None


def status(project: Project, wh: Warehouse, syncs, env: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    env = os.environ if env is None else env
    ledger = Ledger(wh)
    ledger.ensure()
    out = []
    for sync in syncs:
        last_ok = wh.fetchone(f"select run_id, finished_at from {table('sync_runs')} where sync = ? "
                              "and status in ('ok', 'rejected') order by finished_at desc limit 1", (sync.name,))
        last = wh.fetchone(f"select run_id, status, message, finished_at from {table('sync_runs')} where sync = ? "
                           "order by started_at desc limit 1", (sync.name,))
        try:
            audience = wh.fetchone(f"select count(*) from {qualified(*sync.relation)}")[0]
        except Exception:  # the model may not be built yet; status still reports the rest
            audience = None
        pending, exhausted = ledger.rejection_counts(sync.name, sync.max_row_attempts)
        out.append({
            "sync": sync.name, "model": sync.model, "destination": sync.destination, "kind": sync.kind,
            "list_name": sync.list_name,
            "last_success_run_id": last_ok[0] if last_ok else None,
            "last_success_at": _iso(last_ok[1]) if last_ok else None,
            "seconds_since_success": int((utcnow() - last_ok[1]).total_seconds()) if last_ok else None,
            "last_run_status": last[1] if last else None,
            "last_run_message": last[2] if last else None,
            "audience_size": audience,
            "destination_size": ledger.member_count(sync.name),   # as acknowledged by the destination
            "rejected_pending": pending,
            "rejected_exhausted": exhausted,
            "rejections": ledger.rejections(sync.name, limit=10),
            "retry_command": f"pusher retry {sync.name}" if exhausted else None,
            "sources": _source_freshness(project, sync.model_id),
            "waiting_for_people": waiting_for_people(project, wh, sync),
            **membership_refresh(wh, sync, env),
        })
    _add_cadence(wh, syncs, out)
    _add_reported_sizes(project, ledger, syncs, out, env)
    return out


def _add_reported_sizes(project: Project, ledger: Ledger, syncs, rows: list[dict[str, Any]],
                        env: Mapping[str, str]) -> None:
    """Microsoft lists: the matched size Microsoft reports, beside destination_size (ours)."""
    from pusher.destinations.msads_sizes import reported_sizes

    ids = {sync.name: ledger.list_external_id(sync.name, sync.list_name or "") for sync in syncs
           if sync.destination == "microsoft_ads" and sync.kind == "audience"}
    ids = {name: list_id for name, list_id in ids.items() if list_id}
    found = reported_sizes(sorted(set(ids.values())), env, project.project_dir)
    for row in rows:
        row.update(found.get(ids.get(row["sync"], ""), {}))


def _add_cadence(wh: Warehouse, syncs, rows: list[dict[str, Any]]) -> None:
    """cadence, due and late per sync (rules in pusher.cadence)."""
    last = cadence.last_successes(wh, syncs)
    now = utcnow()
    for sync, row in zip(syncs, rows):
        row["cadence"] = sync.cadence
        row["due"] = cadence.is_due(sync.cadence_seconds, last[sync.name], now)
        row["late"] = cadence.is_late(sync.cadence_seconds, last[sync.name], now)


def history(wh: Warehouse, limit: int = 20, run_id: str | None = None) -> list[dict[str, Any]]:
    Ledger(wh).ensure()
    where, params = ("where run_id = ?", [run_id]) if run_id else ("", [])
    runs = wh.fetchall(f"select run_id, command, started_at, finished_at, status, exit_code from {table('runs')} "
                       f"{where} order by started_at desc limit ?", (*params, limit))
    out = []
    for rid, command, started, finished, state, code in runs:
        syncs = wh.fetchall(f"select {', '.join(SYNC_RUN_FIELDS)} from {table('sync_runs')} where run_id = ? "
                            "order by started_at", (rid,))
        entry = {"run_id": rid, "command": command, "started_at": _iso(started), "finished_at": _iso(finished),
                 "status": state, "exit_code": code,
                 "syncs": [{k: _iso(v) for k, v in zip(SYNC_RUN_FIELDS, row) if k != "run_id"} for row in syncs]}
        if run_id:
            entry["batches"] = [
                {"sync": r[0], "batch_no": r[1], "op": r[2], "rows": r[3], "accepted": r[4], "rejected": r[5],
                 "at": _iso(r[6])}
                for r in wh.fetchall(f"select sync, batch_no, op, row_count, accepted, rejected, recorded_at from {table('batches')} "
                                     "where run_id = ? order by recorded_at, batch_no", (rid,))]
        else:
            entry["batches"] = wh.fetchone(f"select count(*) from {table('batches')} where run_id = ?", (rid,))[0]
        out.append(entry)
    return out
