"""Alerts: a real `pusher sync` process posts to a real local HTTP server (Slack-shaped and
generic JSON); a failing webhook never fails the sync; no secret and no raw email leaves."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from pusher.alerts import Alert, Thresholds, collect, slack_payload
from pusher.emulators.server import free_port, running
from pusher.sync import RunReport, SyncOutcome
from tests.pusher.conftest import sha

SECRET_PATH = "T000/B000/s3cr3t-webhook-token"


class Receiver:
    def __init__(self):
        self.slack: list[dict] = []
        self.generic: list[dict] = []
        self.raw: list[bytes] = []

    def app(self) -> Starlette:
        async def slack(request: Request):
            self.raw.append(await request.body())
            assert request.headers["content-type"] == "application/json"
            self.slack.append(json.loads(self.raw[-1]))
            return PlainTextResponse("ok")        # what Slack answers

        async def generic(request: Request):
            self.raw.append(await request.body())
            self.generic.append(json.loads(self.raw[-1]))
            return PlainTextResponse("", status_code=204)

        async def broken(request: Request):
            return PlainTextResponse("no_service", status_code=404)   # a removed Slack webhook

        return Starlette(routes=[Route(f"/services/{SECRET_PATH}", slack, methods=["POST"]),
                                 Route("/hook/secret-generic", generic, methods=["POST"]),
                                 Route("/broken/secret-broken", broken, methods=["POST"])])

    def kinds(self) -> list[str]:
        return sorted(alert["kind"] for doc in self.generic for alert in doc["alerts"])

    def clear(self) -> None:
        self.slack.clear(), self.generic.clear()


@pytest.fixture
def receiver():
    recv = Receiver()
    with running(recv.app()) as url:
        recv.url = url
        yield recv


@pytest.fixture(params=["pusher_fingerprint"])
def project(tmp_path, request):
    from tests.pusher.conftest import Project

    return Project(tmp_path)


def pusher(project, receiver, *args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PUSHER_FILE_DIR": str(project.out),
                   "PUSHER_SLACK_WEBHOOK_URL": f"{receiver.url}/services/{SECRET_PATH}",
                   "PUSHER_ALERT_WEBHOOK_URL": f"{receiver.url}/hook/secret-generic", **env}
    for name in ("DBT_TARGET", "DBT_PROFILES_DIR", "DBT_TARGET_PATH"):
        environment.pop(name, None)
    completed = subprocess.run([sys.executable, "-m", "pusher", *args, "--project-dir", str(project.root)],
                               env=environment, capture_output=True, text=True, timeout=120)
    receiver.outputs = getattr(receiver, "outputs", []) + [completed.stdout, completed.stderr]
    return completed


def test_alerts_reach_a_local_server_from_a_real_sync(project, receiver):
    project.set_audience_range(0, 10)
    first = pusher(project, receiver, "sync", "-s", "sync_cart")
    assert first.returncode == 0, first.stderr
    assert receiver.generic == [] and receiver.slack == []          # a clean first run: nothing to say

    project.set_audience_range(0, 3)                                 # 7 of 10 would leave: guard stop
    stopped = pusher(project, receiver, "sync", "-s", "sync_cart")
    assert stopped.returncode == 4
    assert receiver.kinds() == ["guard_stopped", "size_change"]     # the stop says why: the model shrank
    assert receiver.generic[0]["exit_code"] == 4 and receiver.generic[0]["alerts"][0]["sync"] == "sync_cart"
    slack = receiver.slack[0]
    assert "guard_stopped" in slack["text"] or "remove_share" in slack["text"]
    assert slack["blocks"][0]["type"] == "header" and slack["blocks"][1]["text"]["type"] == "mrkdwn"
    assert "remove_share" in slack["blocks"][1]["text"]["text"]

    receiver.clear()
    forced = pusher(project, receiver, "sync", "-s", "sync_cart", "--force")   # the audience lost 70 %
    assert forced.returncode == 0, forced.stderr
    size = [a for a in receiver.generic[0]["alerts"] if a["kind"] == "size_change"][0]
    assert size["details"] == {"previous": 10, "current": 3, "change": -0.7}

    receiver.clear()
    project.set_audience([("c000001", sha("x@example.com"), None), ("c000002", "not-a-hash", None)])
    failed = pusher(project, receiver, "sync", "-s", "sync_cart")
    assert failed.returncode == 5
    assert receiver.kinds() == ["sync_failed"]

    receiver.clear()
    project.set_meta("sync_cart", max_row_attempts=1)
    project.set_audience_range(0, 8)                                 # adds c3..c7, four of them rejected
    (project.root / "target" / "sources.json").write_text(json.dumps({"results": [
        {"unique_id": "source.proj.store.customers", "status": "warn", "max_loaded_at": "2024-01-01T00:00:00"}]}))
    rejected = pusher(project, receiver, "sync", "-s", "sync_cart", PUSHER_FILE_REJECT_KEYS="c00000[3-6]",
                      PUSHER_ALERT_SIZE_CHANGE="2")     # 3 -> 8 is +167 %: under this threshold
    assert rejected.returncode == 3
    assert receiver.kinds() == ["failed_share", "rows_exhausted", "stale_sources"]
    stale = [a for a in receiver.generic[0]["alerts"] if a["kind"] == "stale_sources"][0]
    assert stale["details"] == {"source": "source.proj.store.customers", "syncs": ["sync_cart"]}

    receiver.clear()
    dry = pusher(project, receiver, "sync", "-s", "sync_cart", "--dry-run")
    assert dry.returncode == 3 or dry.returncode == 0
    assert receiver.generic == []                                     # a dry run alerts nobody

    again = pusher(project, receiver, "sync", "-s", "sync_cart", PUSHER_FILE_REJECT_KEYS="c00000[3-6]",
                   PUSHER_ALERT_SIZE_CHANGE="2")
    assert again.returncode == 3 and receiver.kinds() == ["stale_sources"]   # the exhausted rows: told once
    (project.root / "target" / "sources.json").unlink()

    everything = b"".join(receiver.raw).decode() + "".join(receiver.outputs)
    assert "s3cr3t" not in everything and "secret-generic" not in everything
    assert "@example.com" not in b"".join(receiver.raw).decode()


def test_a_failing_webhook_never_fails_the_sync(project, receiver):
    project.set_audience([("c000001", "bad", None)])
    result = pusher(project, receiver, "sync", "-s", "sync_cart",
                    PUSHER_SLACK_WEBHOOK_URL=f"{receiver.url}/broken/secret-broken",
                    PUSHER_ALERT_WEBHOOK_URL=f"http://127.0.0.1:{free_port()}/secret-refused")
    assert result.returncode == 5                                     # the sync's own code, not the webhook's
    assert "slack alert webhook answered HTTP 404" in result.stderr
    assert "generic alert webhook failed (DestinationUnavailable)" in result.stderr
    assert "secret-broken" not in result.stderr and "secret-refused" not in result.stderr

    project.set_audience_range(0, 2)
    ok = pusher(project, receiver, "sync", "-s", "sync_cart",
                PUSHER_ALERT_WEBHOOK_URL=f"http://127.0.0.1:{free_port()}/x")
    assert ok.returncode == 0


def test_bad_threshold_is_a_config_error_before_anything_is_sent(project, receiver):
    project.set_audience_range(0, 2)
    result = pusher(project, receiver, "sync", "-s", "sync_cart", PUSHER_ALERT_SIZE_CHANGE="half")
    assert result.returncode == 5 and "PUSHER_ALERT_SIZE_CHANGE" in result.stderr
    assert project.listed() == {}


def test_collect_and_slack_limits():
    report = RunReport("r1", "sync", [
        SyncOutcome("a", "ok", plan={"audience_size": 100}),
        SyncOutcome("b", "ok", plan={"audience_size": 149}),
        SyncOutcome("c", "unreachable", exit_code=6, message="host down for jane@example.com"),
    ])
    alerts = collect(report, {"a": 49, "b": 100, "c": None}, {}, Thresholds(size_change=0.5))
    assert [(a.kind, a.sync) for a in alerts] == [("size_change", "a"), ("sync_failed", "c")]
    assert "jane@example.com" not in alerts[1].summary and "j***@example.com" in alerts[1].summary
    many = [Alert("size_change", f"s{i}", f"<s{i}> & more") for i in range(80)]
    payload = slack_payload(many, "r1", 0)
    assert len(payload["blocks"]) == 50 and payload["blocks"][1]["text"]["text"].endswith("&lt;s0&gt; &amp; more")


def test_the_command_line_and_its_alerts_import_no_http_client_until_one_is_needed():
    """httpx is imported by a destination being built (on the look-ahead thread) or a webhook
    being posted, not by every run's start on the main thread."""
    loaded = subprocess.run([sys.executable, "-c", "import sys; import pusher.cli; from pusher import alerts, only, sync; "
                             "print('httpx' in sys.modules)"], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "False"
