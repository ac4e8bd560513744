"""`pusher report`: one self-contained HTML file a person reads at a glance.

Per sync: audience and destination size over its runs (with the Microsoft Advertising serving
minimum of 300 members, or the sync's min_audience_size, as a dashed line), adds and removes per
run, rows rejected per run; and the freshness of every source (age against its warn and error
thresholds, from dbt's target/sources.json). Read from the ledger's sync_runs; nothing is sent.

The plots are drawn with matplotlib as inline SVG (text kept as text): no JavaScript, no CDN,
no network; the file opens anywhere, prints, and stays small. Microsoft's minimum: a Customer
Match list serves only with at least 300 matched people, its sizes appearing about 48 hours after
the upload ("Customer List Record - Bulk",
https://learn.microsoft.com/en-us/advertising/bulk-service/customer-list).
"""

from __future__ import annotations

import html
import io
import json
import re
from datetime import datetime, timezone
from typing import Any

from matplotlib.figure import Figure

from pusher.config import Project, SyncDefinition
from pusher.ledger import Ledger, table
from pusher.status import source_freshness
from pusher.warehouse import Warehouse

MSADS_SERVING_MINIMUM = 300
MAX_RUNS = 60                      # per sync: the latest runs, so the bars stay readable
COLORS = {"audience": "#1f77b4", "destination": "#ff7f0e", "adds": "#2ca02c", "removes": "#d62728",
          "rejected": "#9467bd", "minimum": "#7f7f7f", "pass": "#2ca02c", "warn": "#ffbf00", "error": "#d62728"}
RUN_FIELDS = ("run_id", "status", "exit_code", "audience_size", "ledger_size", "adds", "removes", "updates",
              "events", "rejected", "finished_at")

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1300px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 2px} .meta{color:#666;font-size:13px}
table{border-collapse:collapse;font-size:13px;margin:10px 0} td,th{padding:3px 10px;border-bottom:1px solid #ddd;
text-align:right} td:first-child,th:first-child,td.l,th.l{text-align:left} .ok{color:#2ca02c} .bad{color:#d62728}
.warn{color:#b8860b} figure{margin:6px 0} svg{max-width:100%;height:auto}
"""


# -- data (I/O) -----------------------------------------------------------------------------------
def gather(project: Project, wh: Warehouse, syncs: list[SyncDefinition]) -> dict[str, Any]:
    Ledger(wh).ensure()
    runs = {}
    for sync in syncs:
        rows = wh.fetchall(f"select {', '.join(RUN_FIELDS)} from {table('sync_runs')} where sync = ? "
                           "and finished_at is not null order by started_at desc limit ?", (sync.name, MAX_RUNS))
        runs[sync.name] = [dict(zip(RUN_FIELDS, row)) for row in reversed(rows)]
    feeds: dict[str, list[str]] = {}
    for sync in syncs:
        for source in source_freshness(project, sync.model_id):
            feeds.setdefault(str(source["source"]), []).append(sync.name)
    return {"runs": runs, "sources": _sources(project, feeds), "generated_at": datetime.now(timezone.utc)}


def _sources(project: Project, feeds: dict[str, list[str]]) -> list[dict[str, Any]]:
    path = project.target_path / "sources.json"
    try:
        results = json.loads(path.read_text()).get("results") or [] if path.exists() else []
    except json.JSONDecodeError:
        results = []
    out = []
    for result in results:
        criteria = result.get("criteria") or {}
        out.append({"source": result.get("unique_id"), "status": result.get("status"),
                    "age_hours": (result.get("max_loaded_at_time_ago_in_s") or 0) / 3600,
                    "warn_hours": _hours(criteria.get("warn_after")), "error_hours": _hours(criteria.get("error_after")),
                    "syncs": sorted(feeds.get(str(result.get("unique_id")), []))})
    return sorted(out, key=lambda source: str(source["source"]))


def _hours(rule: dict | None) -> float | None:
    if not rule or not rule.get("count"):
        return None
    per = {"minute": 1 / 60, "hour": 1, "day": 24}.get(str(rule.get("period")))
    return rule["count"] * per if per else None


# -- drawing (pure: data in, SVG text out) --------------------------------------------------------
def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buffer.getvalue()
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)   # the RDF block: nothing to read
    return text[text.index("<svg"):]            # drop the XML prolog and DOCTYPE: inline SVG in HTML


def _label(run: dict[str, Any]) -> str:
    finished = run["finished_at"]
    return finished.strftime("%m-%d %H:%M") if isinstance(finished, datetime) else str(finished)


def minimum_line(sync: SyncDefinition) -> tuple[int, str] | None:
    if sync.destination == "microsoft_ads":
        return max(MSADS_SERVING_MINIMUM, sync.min_audience_size), "Microsoft serves lists of 300+"
    if sync.min_audience_size:
        return sync.min_audience_size, "min_audience_size"
    return None


def sync_figure(sync: SyncDefinition, runs: list[dict[str, Any]]) -> str:
    with _style():
        figure = Figure(figsize=(13, 3.1))
        size, changes, rejected = figure.subplots(1, 3, gridspec_kw={"width_ratios": [1.3, 1.3, 1]})
        x = list(range(len(runs)))
        labels = [_label(run) for run in runs]
        size_name = {"audience": "members"}.get(sync.kind, sync.kind)   # people, events, objects
        size.plot(x, [run["audience_size"] for run in runs], marker="o", color=COLORS["audience"],
                  label=f"model ({size_name})")
        size.plot(x, [run["ledger_size"] for run in runs], marker="s", linestyle="--", color=COLORS["destination"],
                  label="destination (acknowledged)")
        line = minimum_line(sync) if sync.kind == "audience" else None
        if line:
            size.axhline(line[0], color=COLORS["minimum"], linestyle=":", linewidth=1.5, label=line[1])
        size.set_title("size over time")
        peak = max([1] + [run[key] or 0 for run in runs for key in ("audience_size", "ledger_size")])
        size.set_ylim(0, max(peak, line[0] if line else 0) * 1.12)
        size.legend(loc="best", fontsize=8)
        if sync.kind == "audience":
            changes.bar(x, [run["adds"] or 0 for run in runs], color=COLORS["adds"], label="adds")
            changes.bar(x, [-(run["removes"] or 0) for run in runs], color=COLORS["removes"], label="removes")
            changes.set_title("adds (up) and removes (down) per run")
        else:
            key = "events" if sync.kind == "events" else "updates"   # people and objects are updates
            changes.bar(x, [run[key] or 0 for run in runs], color=COLORS["adds"], label=key)
            changes.set_title(f"{key} sent per run")
        changes.axhline(0, color="#444", linewidth=0.8)
        if not any(run[key] for run in runs for key in ("adds", "removes", "updates", "events")):
            changes.set_ylim(-1, 1)
        changes.legend(loc="best", fontsize=8)
        rejected.bar(x, [run["rejected"] or 0 for run in runs], color=COLORS["rejected"])
        rejected.set_title("rows rejected per run")
        rejected.set_ylim(bottom=0, top=max([1] + [run["rejected"] or 0 for run in runs]) * 1.15)
        step = max(1, len(x) // 8)
        for axis in (size, changes, rejected):
            axis.set_xticks(x[::step], labels[::step], rotation=30, ha="right", fontsize=8)
            axis.grid(axis="y", alpha=0.3)
        return _svg(figure)


def freshness_figure(sources: list[dict[str, Any]]) -> str:
    with _style():
        figure = Figure(figsize=(13, 0.45 * len(sources) + 1.2))
        axis = figure.subplots()
        names = [str(source["source"]).removeprefix("source.") for source in sources]
        ages = [source["age_hours"] for source in sources]
        colors = [COLORS.get(str(source["status"]), COLORS["error"]) for source in sources]
        axis.barh(names, ages, color=colors)
        for row, source in enumerate(sources):
            for limit, style in ((source["warn_hours"], COLORS["warn"]), (source["error_hours"], COLORS["error"])):
                if limit:
                    axis.plot([limit, limit], [row - 0.4, row + 0.4], color=style, linewidth=2.5)
            axis.annotate(f"{source['age_hours']:.1f} h ({source['status']})", (source["age_hours"], row),
                          xytext=(4, 0), textcoords="offset points", va="center", fontsize=8)
        axis.invert_yaxis()
        axis.set_xlabel("hours since the last load (marks: warn and error thresholds)")
        axis.set_title("source freshness")
        axis.grid(axis="x", alpha=0.3)
        return _svg(figure)


class _style:
    """matplotlib settings for this report only (text stays text in the SVG; stable ids)."""

    def __enter__(self):
        import matplotlib

        self._context = matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "pusher-report",
                                               "font.size": 9, "axes.spines.top": False,
                                               "axes.spines.right": False})
        self._context.__enter__()

    def __exit__(self, *exc):
        return self._context.__exit__(*exc)


def _cell(value: Any) -> str:
    return "-" if value is None else html.escape(f"{value:,}" if isinstance(value, int) else str(value))


def render(syncs: list[SyncDefinition], data: dict[str, Any]) -> str:
    e = html.escape
    generated = data["generated_at"].strftime("%Y-%m-%d %H:%M UTC")
    summary = ["<table><tr><th class=l>sync</th><th class=l>destination</th><th class=l>list / kind</th>"
               "<th>runs</th><th class=l>last run</th><th>model</th><th>destination</th><th>rejected (last)</th></tr>"]
    sections = []
    for sync in syncs:
        runs = data["runs"].get(sync.name) or []
        last = runs[-1] if runs else {}
        status = last.get("status")
        css = "ok" if status == "ok" else "warn" if status == "rejected" else "bad"
        summary.append(f"<tr><td><a href='#sync-{e(sync.name)}'>{e(sync.name)}</a></td><td class=l>"
                       f"{e(sync.destination)}</td><td class=l>{e(sync.list_name or sync.kind)}</td><td>{len(runs)}</td>"
                       f"<td class='l {css}'>{e(status or 'never synced')}</td><td>{_cell(last.get('audience_size'))}</td>"
                       f"<td>{_cell(last.get('ledger_size'))}</td><td>{_cell(last.get('rejected'))}</td></tr>")
        body = sync_figure(sync, runs) if runs else "<p class=meta>never synced</p>"
        sections.append(f"<section id='sync-{e(sync.name)}'><h2>{e(sync.name)}</h2><div class=meta>"
                        f"{e(sync.destination)} · {e(sync.kind)}{' · ' + e(sync.list_name) if sync.list_name else ''}"
                        f" · model {e(sync.model)}{' · cadence ' + e(sync.cadence) if sync.cadence else ''}</div>"
                        f"<figure>{body}</figure></section>")
    summary.append("</table>")
    sources = data["sources"]
    freshness = (freshness_figure(sources) if sources else
                 "<p class=meta>no target/sources.json: run <code>dbt source freshness</code> to see it here</p>")
    return ("<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>pusher report</title>"
            f"<style>{CSS}</style></head><body><h1>pusher report</h1>"
            f"<div class=meta>generated {generated} · {len(syncs)} syncs · sizes are members (audiences), people "
            "or events; destination = what the destination acknowledged (the ledger)</div>"
            + "".join(summary) + f"<section id=freshness><h2>Source freshness</h2>{freshness}</section>"
            + "".join(sections) + "</body></html>")


def write(project: Project, wh: Warehouse, syncs: list[SyncDefinition], out) -> int:
    """Write the report; returns its size in bytes."""
    text = render(syncs, gather(project, wh, syncs))
    out.write_text(text, encoding="utf-8")
    return len(text.encode("utf-8"))
