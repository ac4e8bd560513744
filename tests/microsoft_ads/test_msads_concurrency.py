"""Several bulk uploads in flight against the emulator with latency: the Replace that starts a
list is finished before any add, every remove before the first add, and the list and the
ledger end equal to the audience."""

from __future__ import annotations

import threading
import time

from msads_helpers import HTTP, Emulator, destination_env

from pusher.destinations.microsoft_ads import MicrosoftAdsDestination
from pusher.destinations.msads_bulk_file import ListRow, build_upload
from pusher.emulators.microsoft_ads import create_app
from pusher.emulators.options import EmulatorOptions
from pusher.emulators.server import running
from tests.pusher.conftest import Project

LIST = "MSADS__Cart_Abandon_0-1d__NoPurchase"


class Timed(MicrosoftAdsDestination):
    """The real destination, noting when each upload started and ended and how many overlapped."""

    def __init__(self, **settings):
        super().__init__(**settings)
        self.calls: list[tuple[str, float, float]] = []
        self.in_flight = self.most_in_flight = 0
        self._guard = threading.Lock()

    def _send(self, ref, members, action):
        with self._guard:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        start = time.monotonic()
        try:
            return super()._send(ref, members, action)
        finally:
            with self._guard:
                self.in_flight -= 1
                self.calls.append((action, start, time.monotonic()))

    def calls_of(self, action: str) -> list[tuple[str, float, float]]:
        return [call for call in self.calls if call[0] == action]


def _timed_sync(project: Project, base: str, tmp_path) -> Timed:
    """One successful sync through a new timed destination (50-row files, 4 uploads at a time)."""
    env = destination_env(base, tmp_path, MSADS_MAX_ROWS_PER_FILE="50", MSADS_MAX_CONCURRENT_UPLOADS="4")
    destination = Timed.from_env(env)
    try:
        report = project.sync(destination=destination)
    finally:
        destination.close()
    assert report.exit_code == 0, report.to_dict()
    return destination


def test_uploads_in_flight_keep_replace_and_removes_first(tmp_path):
    project = Project(tmp_path)
    project.set_meta("sync_cart", destination="microsoft_ads", list_name=LIST)
    project.set_audience_range(0, 600)
    with running(create_app(EmulatorOptions(latency_ms=20))) as base:
        emulator = Emulator(base)
        first = _timed_sync(project, base, tmp_path)
        replace, adds = first.calls_of("Replace"), first.calls_of("Add")
        assert len(replace) == 1 and len(adds) == 11 and first.most_in_flight > 1
        assert replace[0][2] <= min(start for _, start, _ in adds), "an add overlapped the Replace"

        project.sql("delete from aud_cart where customer_id < 'c000060'")
        project.sql("update aud_cart set email_sha256 = sha256(email_sha256) where customer_id < 'c000120'")
        second = _timed_sync(project, base, tmp_path)
        removes, adds = second.calls_of("Remove"), second.calls_of("Add")
        assert removes and adds and max(end for _, _, end in removes) <= min(start for _, start, _ in adds)
        list_id = next(item["id"] for item in emulator.state()["lists"] if item["name"] == LIST)
        audience = project.audience()
        assert emulator.members_of(list_id) == {email for email, _ in audience.values()}
        assert project.ledger() == audience


def _hold_upload_slots(base: str, destination: MicrosoftAdsDestination, count: int) -> None:
    """Another tool of the same customer: uploads `count` files and never polls them."""
    sent = {"Authorization": f"Bearer {destination._tokens.access_token()}", "DeveloperToken": "demo-developer-token",
            "CustomerId": "1000", "CustomerAccountId": "2000"}
    data = build_upload(ListRow("-1", "MSADS__Other_Tool", accept_terms=True), [])
    for _ in range(count):
        slot = HTTP.post(base + "/Bulk/v13/BulkUploadUrl/Query", headers=sent,
                         json={"AccountId": "2000", "ResponseMode": "ErrorsOnly"}).json()
        response = HTTP.post(slot["UploadUrl"], headers={**sent, "AccountId": "2000"},
                             files={"file": ("upload.zip", data, "application/zip")})
        assert response.status_code == 200, response.text


def test_uploads_refused_while_another_tool_holds_slots_back_off_and_converge(tmp_path, monkeypatch):
    """The emulator refuses a sixth running upload (3227); with 2 slots taken by another tool, the
    pusher's 4 uploads at a time meet that refusal, wait, ask for new URLs and still converge."""
    monkeypatch.setenv("MSADS_EMULATOR_UPLOAD_SLOT_SECONDS", "5")     # the other tool's files finish in 5 s
    project = Project(tmp_path)
    project.set_meta("sync_cart", destination="microsoft_ads", list_name=LIST)
    project.set_audience_range(0, 600)
    with running(create_app(EmulatorOptions(latency_ms=20))) as base:
        emulator = Emulator(base)
        env = destination_env(base, tmp_path, MSADS_MAX_ROWS_PER_FILE="50", MSADS_MAX_CONCURRENT_UPLOADS="4",
                              MSADS_APPLY_MAX_ITEMS="0", MSADS_RATE_WAIT_SECONDS="0.2",
                              MSADS_THROTTLE_MAX_WAIT_SECONDS="0.2",
                              MSADS_MAX_THROTTLE_RETRIES="100")
        destination = Timed.from_env(env)
        try:
            _hold_upload_slots(base, destination, 2)
            report = project.sync(destination=destination)
        finally:
            destination.close()
        assert report.exit_code == 0, report.to_dict()
        assert emulator.stats()["requests"]["FileUpload"].get("400", 0) > 0, "no upload was refused"
        list_id = next(item["id"] for item in emulator.state()["lists"] if item["name"] == LIST)
        assert emulator.members_of(list_id) == {email for email, _ in project.audience().values()}
        assert project.ledger() == project.audience()
