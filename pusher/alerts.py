"""Alerts after `pusher sync`: someone must notice a failed sync, a guard stop, rows that will
never arrive, or an audience that suddenly halved.

Configured by environment (both optional, both secrets: the URL is the credential):
  PUSHER_SLACK_WEBHOOK_URL   a Slack incoming webhook. The body is `{"text": ..., "blocks": [...]}`
                             as Slack documents it: `text` is the notification fallback, `blocks` are
                             Block Kit `header` and `section` blocks with mrkdwn text, where `&`, `<`
                             and `>` must be escaped, at most 50 blocks per message and 3000
                             characters per section text, 150 per header
                             (https://api.slack.com/messaging/webhooks,
                             https://api.slack.com/reference/block-kit/blocks,
                             https://api.slack.com/reference/surfaces/formatting#escaping).
  PUSHER_ALERT_WEBHOOK_URL   any endpoint taking one JSON document per run (`generic_payload`).
Thresholds (settings):
  PUSHER_ALERT_FAILED_SHARE  rows rejected this run / rows sent, above which to alert (default 0.05)
  PUSHER_ALERT_SIZE_CHANGE   relative change of an audience's size since its last successful run
                             above which to alert (default 0.5, i.e. it grew by or lost half)
  PUSHER_ALERT_TIMEOUT       seconds per webhook request (default 10)

One message per run lists every alert. A webhook that fails (refused, timed out, not 2xx) is
logged on stderr and never changes the sync's exit code. Alert text goes through the secret
redaction (pusher.errors.redact, which also knows both webhook URLs) and the PII masking
(pusher.pii): no credential and no raw email or phone can leave in an alert.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping

from pusher.errors import (EXIT_CONFIG_ERROR, EXIT_DESTINATION_UNREACHABLE, ConfigError, PusherError,
                           redact, register_secret)
from pusher.pii import mask_text

FAILING_EXIT_CODES = (EXIT_CONFIG_ERROR, EXIT_DESTINATION_UNREACHABLE, 1)
SLACK_MAX_BLOCKS = 50
SLACK_MAX_SECTION = 3000
SLACK_MAX_HEADER = 150
WEBHOOK_SETTINGS = {"slack": "PUSHER_SLACK_WEBHOOK_URL", "generic": "PUSHER_ALERT_WEBHOOK_URL"}


@dataclass(frozen=True)
class Thresholds:
    failed_share: float = 0.05
    size_change: float = 0.5
    timeout: float = 10.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "Thresholds":
        values = {}
        for name, key, low, high in (("failed_share", "PUSHER_ALERT_FAILED_SHARE", 0.0, 1.0),
                                     ("size_change", "PUSHER_ALERT_SIZE_CHANGE", 0.0, 1000.0),
                                     ("timeout", "PUSHER_ALERT_TIMEOUT", 0.1, 300.0)):
            raw = env.get(key)
            if raw in (None, ""):
                continue
            try:
                value = float(raw)
            except ValueError:
                raise ConfigError(f"{key} must be a number, got {raw!r}") from None
            if not low <= value <= high:
                raise ConfigError(f"{key} must be between {low:g} and {high:g}, got {raw!r}")
            values[name] = value
        return cls(**values)


@dataclass
class Alert:
    kind: str          # sync_failed | guard_stopped | rows_exhausted | failed_share | size_change | stale_sources
    sync: str | None
    summary: str       # one line a person reads in a notification
    details: dict[str, Any] = field(default_factory=dict)


def _clean(text: str) -> str:
    return mask_text(redact(text))


def collect(report, previous_sizes: Mapping[str, int | None], stale: Mapping[str, list[str]],
            thresholds: Thresholds, newly_exhausted: Mapping[str, int] | None = None) -> list[Alert]:
    """Every alert a finished run deserves (pure). `previous_sizes`: sync -> audience size at
    its last successful run before this one; `stale`: source -> the selected syncs it feeds;
    `newly_exhausted`: sync -> rows whose last attempt was in this run (None: every exhausted
    row counts), so rows that ran out of attempts are announced once, not on every later run."""
    alerts: list[Alert] = []
    for outcome in report.outcomes:
        sync = outcome.sync
        if outcome.exit_code in FAILING_EXIT_CODES:
            alerts.append(Alert("sync_failed", sync, f"{sync} failed ({outcome.status}, exit {outcome.exit_code}): "
                                f"{_clean(outcome.message).splitlines()[0] if outcome.message else ''}",
                                {"status": outcome.status, "exit_code": outcome.exit_code}))
        elif outcome.status == "guard_stopped":
            alerts.append(Alert("guard_stopped", sync, f"{sync} stopped by guard {', '.join(outcome.stopped_by)}: "
                                f"{_clean(outcome.message).splitlines()[0] if outcome.message else ''}",
                                {"stopped_by": list(outcome.stopped_by)}))
        exhausted = outcome.exhausted if newly_exhausted is None else newly_exhausted.get(sync, 0)
        if exhausted:
            alerts.append(Alert("rows_exhausted", sync, f"{sync}: {exhausted} row(s) rejected on every "
                                "attempt; they are no longer retried (see `pusher status --verbose`)",
                                {"exhausted": exhausted, "exhausted_total": outcome.exhausted}))
        attempted = sum(outcome.sent.values()) + outcome.rejected
        if outcome.rejected and attempted and outcome.rejected / attempted > thresholds.failed_share:
            share = outcome.rejected / attempted
            alerts.append(Alert("failed_share", sync, f"{sync}: {outcome.rejected} of {attempted} rows rejected "
                                f"({share:.0%} > {thresholds.failed_share:.0%})",
                                {"rejected": outcome.rejected, "attempted": attempted, "share": round(share, 4)}))
        size = (outcome.plan or {}).get("audience_size")
        before = previous_sizes.get(sync)
        if size is not None and before:
            change = (size - before) / before
            if abs(change) > thresholds.size_change:
                alerts.append(Alert("size_change", sync, f"{sync}: audience moved from {before} to {size} "
                                    f"({change:+.0%}) since its last successful run",
                                    {"previous": before, "current": size, "change": round(change, 4)}))
    for source, syncs in sorted(stale.items()):
        alerts.append(Alert("stale_sources", None, f"source {source} is stale (feeds {', '.join(sorted(syncs))})",
                            {"source": source, "syncs": sorted(syncs)}))
    return alerts


def _mrkdwn(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(alerts: list[Alert], run_id: str | None, exit_code: int) -> dict[str, Any]:
    title = f"pusher sync {run_id or ''}: {len(alerts)} alert(s), exit {exit_code}"
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text",
                                                                 "text": title[:SLACK_MAX_HEADER]}}]
    shown = alerts[:SLACK_MAX_BLOCKS - 2]
    for alert in shown:
        text = f"*{alert.kind}*  {_mrkdwn(alert.summary)}"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:SLACK_MAX_SECTION]}})
    if len(alerts) > len(shown):
        blocks.append({"type": "section", "text": {"type": "mrkdwn",
                                                    "text": f"... and {len(alerts) - len(shown)} more"}})
    fallback = title + ": " + "; ".join(alert.summary for alert in alerts[:5])
    return {"text": fallback[:SLACK_MAX_SECTION], "blocks": blocks}


def generic_payload(alerts: list[Alert], run_id: str | None, exit_code: int) -> dict[str, Any]:
    return {"source": "pusher", "command": "sync", "run_id": run_id, "exit_code": exit_code,
            "alerts": [asdict(alert) for alert in alerts]}


def webhooks(env: Mapping[str, str]) -> dict[str, str]:
    """The configured webhooks; their URLs are registered as secrets at once."""
    found = {name: env[key].strip() for name, key in WEBHOOK_SETTINGS.items() if (env.get(key) or "").strip()}
    for url in found.values():
        register_secret(url)
    return found


def post(alerts: list[Alert], run_id: str | None, exit_code: int, env: Mapping[str, str],
         log: Callable[[str], None] | None = None) -> dict[str, bool]:
    """Post the alerts to each configured webhook; returns webhook -> delivered. Never raises."""
    log = log or (lambda text: print(text, file=sys.stderr))
    hooks = webhooks(env)
    if not alerts or not hooks:
        return {}
    try:
        timeout = Thresholds.from_env(env).timeout
    except ConfigError:
        timeout = Thresholds.timeout
    # Imported here, not by every run: a sync's destination imports them on its look-ahead
    # thread (pusher.look_ahead) while the main thread opens the warehouse.
    import httpx

    from pusher.http import RetryPolicy, make_client, send_with_retries

    builders = {"slack": slack_payload, "generic": generic_payload}
    delivered = {}
    for name, url in hooks.items():
        body = json.dumps(builders[name](alerts, run_id, exit_code), default=str)
        try:
            with make_client(timeout=timeout) as client:
                response = send_with_retries(client, "POST", url, policy=RetryPolicy(max_attempts=3, max_delay=5.0),
                                             what=f"the {name} alert webhook", content=body,
                                             headers={"Content-Type": "application/json"})
            delivered[name] = response.is_success
            if not response.is_success:
                log(f"warning: the {name} alert webhook answered HTTP {response.status_code}; alerts not delivered")
        except (PusherError, httpx.HTTPError, ValueError) as exc:
            delivered[name] = False
            log(redact(f"warning: the {name} alert webhook failed ({type(exc).__name__}); alerts not delivered"))
    return delivered


def previous_sizes(wh, syncs, run_id: str | None) -> dict[str, int | None]:
    """Each sync's audience size at its last successful run other than `run_id` (the ledger's sync_runs)."""
    from pusher.ledger import table

    out = {}
    for sync in syncs:
        row = wh.fetchone(f"select audience_size from {table('sync_runs')} where sync = ? and run_id <> ? "
                          "and status in ('ok', 'rejected') order by finished_at desc limit 1", (sync.name, run_id or ""))
        out[sync.name] = int(row[0]) if row and row[0] is not None else None
    return out


def newly_exhausted(wh, syncs, run_id: str | None) -> dict[str, int]:
    """Rows that spent their last attempt in this run (the ledger's rejections)."""
    from pusher.ledger import table

    return {sync.name: int(wh.fetchone(f"select count(*) from {table('rejections')} where sync = ? and "
                                       "last_run_id = ? and attempts >= ?",
                                       (sync.name, run_id or "", sync.max_row_attempts))[0]) for sync in syncs}


def stale_sources(project, syncs) -> dict[str, list[str]]:
    """Sources past their warn or error freshness (target/sources.json) -> the syncs they feed."""
    from pusher.status import source_freshness

    stale: dict[str, list[str]] = {}
    for sync in syncs:
        for source in source_freshness(project, sync.model_id):
            if source.get("status") in ("warn", "error", "runtime error"):
                stale.setdefault(str(source["source"]), []).append(sync.name)
    return stale


def notify(report, project, wh, syncs, env: Mapping[str, str], log: Callable[[str], None] | None = None) -> list[Alert]:
    """Gather the run's alerts and post them; returns them (for the caller's output)."""
    if not webhooks(env):
        return []
    alerts = collect(report, previous_sizes(wh, syncs, report.run_id), stale_sources(project, syncs),
                     Thresholds.from_env(env), newly_exhausted(wh, syncs, report.run_id))
    post(alerts, report.run_id, report.exit_code, env, log)
    return alerts


def notify_failure(message: str, exit_code: int, env: Mapping[str, str],
                   log: Callable[[str], None] | None = None) -> None:
    """The run itself failed (bad configuration, a bug) before any sync reported."""
    if webhooks(env):
        post([Alert("sync_failed", None, f"pusher sync failed (exit {exit_code}): {_clean(message)}")],
             None, exit_code, env, log)
