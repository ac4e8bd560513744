"""Human output of `pusher plan`, `sync` and `status`: one compact rich table, on stderr.

`--json` stays the machine interface on stdout; these tables are for a person at a terminal
or reading a CI log. Messages and warnings follow the table, one line each; sample rows only
with `--verbose`, and every email or phone in them masked (pusher.pii).
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from typing import Any, Iterable

from rich.console import Console
from rich import box
from rich.table import Table
from rich.text import Text

from pusher.pii import mask, mask_text

STATUS_STYLE = {"ok": "green", "planned": "cyan", "rejected": "yellow", "guard_stopped": "red",
                "input_error": "red", "config_error": "red", "unreachable": "red", "error": "red"}
WIDE = 160   # a CI log is not a terminal: do not fold the table into 80 columns


def console() -> Console:
    """Built per call, so it writes to the sys.stderr of the moment (typer's CliRunner swaps it)."""
    terminal = sys.stderr.isatty()
    return Console(file=sys.stderr, width=None if terminal else WIDE, highlight=False, soft_wrap=True)


def _status(status: str | None) -> Text:
    return Text(status or "-", style=STATUS_STYLE.get(status or "", ""))


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:,}" if isinstance(value, int) else str(value)


def age(seconds: int | float | None) -> str:
    """A short age: 45s, 12m, 3h, 2d."""
    if seconds is None:
        return "never"
    seconds = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _notes(out: Console, sync: str, warnings: Iterable[str], message: str | None) -> None:
    for warning in warnings:
        out.print(Text(f"{sync}: warning: {mask_text(warning)}", style="yellow"))
    if message:
        out.print(Text(f"{sync}: " + mask_text(message).replace("\n", "\n    ")))


def print_run(report, verbose: bool = False, out: Console | None = None) -> None:
    """The outcome of `plan` or `sync` (a pusher.sync.RunReport)."""
    out = out or console()
    if not report.outcomes:
        out.print("no syncs selected (define exposures with meta.pusher)")
        return
    sent = report.command == "sync"
    table = Table(title=f"pusher {report.command}" + (f" (run {report.run_id})" if report.run_id else ""),
                  title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("sync")
    table.add_column("status")
    for name in ("+add", "-remove", "~update", "events"):
        table.add_column(name, justify="right")
    if sent:
        table.add_column("requests", justify="right")
        table.add_column("audience", justify="right")
    else:
        for name in ("audience", "acknowledged", "~requests", "~seconds"):
            table.add_column(name, justify="right")
    for outcome in report.outcomes:
        plan = outcome.plan or {}
        counts = outcome.sent if sent else {key: plan.get(key) for key in ("adds", "removes", "updates", "events")}
        if not sent and not plan:
            counts = {}
        row = [outcome.sync, _status(outcome.status),
               *(_num(counts.get(key)) for key in ("adds", "removes", "updates", "events"))]
        if sent:
            row += [_num(outcome.requests), _num(plan.get("audience_size"))]
        else:
            row += [_num(plan.get("audience_size")), _num(plan.get("ledger_size")),
                    _num(plan.get("estimated_requests")), _num(plan.get("estimated_seconds"))]
        table.add_row(*row)
    out.print(table)
    for outcome in report.outcomes:
        if (outcome.plan or {}).get("refreshes"):
            out.print(f"{outcome.sync}: {outcome.plan['refreshes']} unchanged member(s) re-added before their "
                      "membership expires (in +add)")
        _notes(out, outcome.sync, outcome.warnings, outcome.message)
        if verbose:
            for name, rows in ((outcome.plan or {}).get("samples") or {}).items():
                for row in rows[:3]:
                    out.print(Text(f"{outcome.sync}: sample {name}: {json.dumps(mask(row), default=str)}",
                                   style="dim"))


def print_status(rows: list[dict[str, Any]], verbose: bool = False, out: Console | None = None) -> None:
    """`pusher status` rows (pusher.status.status)."""
    out = out or console()
    if not rows:
        out.print("no syncs selected (define exposures with meta.pusher)")
        return
    table = Table(title=f"pusher status at {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC", title_justify="left",
                  box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for name, justify in (("sync", "left"), ("destination", "left"), ("list / kind", "left"),
                          ("cadence", "right"), ("last success", "right"), ("last run", "left"), ("audience", "right"),
                          ("destination size", "right"), ("rejected", "right"), ("sources", "left")):
        table.add_column(name, justify=justify)
    for row in rows:
        sources = [source.get("status") for source in row.get("sources") or []]
        worst = next((state for state in ("error", "runtime error", "warn") if state in sources),
                     "pass" if sources else "-")
        rejected = f"{row['rejected_pending']} / {row['rejected_exhausted']}"
        table.add_row(row["sync"], row["destination"], row["list_name"] or row["kind"],
                      row.get("cadence") or "-",
                      Text(age(row["seconds_since_success"]) + (" ago" if row["seconds_since_success"] is not None else "")
                           + (" LATE" if row.get("late") else ""), style="red" if row.get("late") else ""),
                      _status(row["last_run_status"]), _num(row["audience_size"]), _num(row["destination_size"]),
                      Text(rejected, style="yellow" if row["rejected_exhausted"] else ""),
                      Text(worst, style={"pass": "green", "warn": "yellow"}.get(worst, "red" if worst != "-" else "")))
    out.print(table)
    out.print(Text("rejected: pending retry / exhausted. destination size: what the destination acknowledged.",
                   style="dim"))
    for row in rows:
        if "reported_search_size" in row:
            reported = (f"{row['sync']}: Microsoft reports {_num(row['reported_search_size'])} matched (search), "
                        f"{_num(row['reported_audience_network_size'])} (audience network) of "
                        f"{_num(row['destination_size'])} uploaded")
            out.print(Text(reported, style="yellow" if row.get("reported_warning") else ""))
        for key in ("reported_warning", "reported_duration_warning", "reported_note", "reported_problem"):
            if row.get(key):
                out.print(Text(f"{row['sync']}: {row[key]}", style="yellow" if key != "reported_note" else "dim"))
        if row.get("refresh_after_days") is not None:
            out.print(f"{row['sync']}: membership refresh: {row['refresh_due']} member(s) due (re-added after "
                      f"{row['refresh_after_days']:g} days), next due {row['next_refresh_at'] or '-'}")
        if row.get("retry_command"):
            out.print(f"{row['sync']}: {row['rejected_exhausted']} row(s) exhausted their retries; once the cause is "
                      f"fixed, `{row['retry_command']}` sends them again")
        if row.get("waiting_for_people"):
            out.print(f"{row['sync']}: {row['waiting_for_people']} member(s) waiting for their person's acknowledged "
                      "identify (the people sync); added on the first run after it")
        if row["last_run_status"] not in (None, "ok") and row.get("last_run_message"):
            _notes(out, row["sync"], [], row["last_run_message"])
        if verbose:
            for rejection in row["rejections"][:5]:
                out.print(f"{row['sync']}: rejected {rejection['op']} {rejection['member_key']} "
                          f"x{rejection['attempts']}: {mask_text(str(rejection['reason']))}")
            for source in row["sources"]:
                out.print(f"{row['sync']}: source {source['source']}: {source['status']} "
                          f"(loaded {source['max_loaded_at']})")


def print_where_now(where: dict[str, Any], out: Console | None = None) -> None:
    """`sync --only`: per customer and destination, the lists it is in and its attributes (masked)."""
    out = out or console()
    table = Table(title="where they are now", title_justify="left", box=box.SIMPLE_HEAD, show_edge=False,
                  pad_edge=False)
    for name in ("customer", "destination", "lists / segments", "attributes", "read from"):
        table.add_column(name)
    for customer, destinations in where.items():
        for destination, seen in destinations.items():
            attributes = seen.get("attributes")
            table.add_row(customer, destination, "\n".join(seen["lists"]) or "(none)",
                          "-" if attributes is None else json.dumps(attributes, default=str, sort_keys=True),
                          seen["read_from"])
    out.print(table)
