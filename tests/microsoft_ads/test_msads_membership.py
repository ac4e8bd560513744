"""Membership that never silently expires: the emulator's expiry clock, the default -1, and
the pusher's refresh of members before a set duration runs out (real DuckDB ledger, real HTTP)."""

from __future__ import annotations

import pytest
from msads_helpers import HTTP, destination_env, members

from pusher.config import load_project
from pusher.destinations.base import ListRef
from pusher.destinations.microsoft_ads import MicrosoftAdsDestination
from pusher.destinations.msads_bulk_file import ListRow, build_rows, build_upload, write_csv, zip_csv
from pusher.errors import ConfigError
from pusher.ledger import table
from pusher.status import status
from pusher.sync import Engine
from pusher.warehouse import Warehouse, load_profile
from tests.pusher.conftest import Project

from test_msads_emulator import access_token, errors_by_client_id, run_file

LIST = "MSADS__Cart_Abandon_0-1d__NoPurchase"


def advance(emulator, days: float) -> None:
    response = HTTP.post(emulator.base + "/_emulator/clock", json={"days": days})
    assert response.status_code == 200, response.text


# ---- the emulator alone: members drop out after the list's duration -------------------------

def test_members_drop_out_after_the_duration_unless_re_added(emulator):
    access = access_token(emulator.base)
    a, b = (m.email_sha256 for m in members(2))
    _, records = run_file(emulator.base, access, build_upload(ListRow("-1", "MSADS__D30", membership_duration=30), [a, b]))
    list_id = records[0]["Id"]
    advance(emulator, 20)
    run_file(emulator.base, access, build_upload(ListRow(list_id, action_type="Add"), [a]))   # a re-added on day 20
    advance(emulator, 10.5)
    assert emulator.members_of(list_id) == {a}           # b's 30 days are over
    assert emulator.state()["clock_offset_days"] == pytest.approx(30.5)
    advance(emulator, 20)
    assert emulator.members_of(list_id) == set()         # and a's, counted from its re-add


def test_empty_duration_is_the_documented_30_days_and_minus_one_never_expires(emulator):
    access = access_token(emulator.base)
    hashes = [m.email_sha256 for m in members(3)]
    _, default = run_file(emulator.base, access, build_upload(ListRow("-1", "MSADS__Default"), hashes))
    _, never = run_file(emulator.base, access, build_upload(ListRow("-1", "MSADS__Never", membership_duration=-1), hashes))
    advance(emulator, 400)
    assert emulator.members_of(default[0]["Id"]) == set()
    assert emulator.members_of(never[0]["Id"]) == set(hashes)


@pytest.mark.parametrize("duration", ["0", "391", "-2", "thirty"])
def test_duration_outside_1_to_390_or_minus_one_is_refused(emulator, duration):
    access = access_token(emulator.base)
    rows = build_rows(ListRow("-1", "MSADS__Bad"), [])
    rows[0]["Membership Duration"] = duration
    _, records = run_file(emulator.base, access, zip_csv(write_csv(rows)))
    assert errors_by_client_id(records) == {"list": "4935"}


def test_the_clock_only_moves_forward(emulator):
    assert HTTP.post(emulator.base + "/_emulator/clock", json={"days": -1}).status_code == 400
    assert HTTP.post(emulator.base + "/_emulator/clock", json={}).status_code == 400


# ---- the destination's settings ----------------------------------------------------------------

def test_new_lists_never_expire_by_default(emulator, make_destination):
    dest = make_destination(emulator)
    dest.ensure_list(ListRef(LIST))
    [item] = emulator.state()["lists"]
    assert item["membership_duration"] == -1
    assert MicrosoftAdsDestination.refresh_after_days({}) is None


def test_refresh_window_follows_duration_and_margin():
    assert MicrosoftAdsDestination.refresh_after_days({"MSADS_MEMBERSHIP_DURATION": "30"}) == 23
    assert MicrosoftAdsDestination.refresh_after_days({"MSADS_MEMBERSHIP_DURATION": "6"}) == 3
    assert MicrosoftAdsDestination.refresh_after_days({"MSADS_MEMBERSHIP_DURATION": "30",
                                                       "MSADS_REFRESH_MARGIN_DAYS": "10"}) == 20
    with pytest.raises(ConfigError, match="MSADS_REFRESH_MARGIN_DAYS"):
        MicrosoftAdsDestination.refresh_after_days({"MSADS_MEMBERSHIP_DURATION": "30",
                                                    "MSADS_REFRESH_MARGIN_DAYS": "30"})
    with pytest.raises(ConfigError, match="MSADS_MEMBERSHIP_DURATION"):
        MicrosoftAdsDestination.refresh_after_days({"MSADS_MEMBERSHIP_DURATION": "391"})


# ---- the whole loop: a DuckDB ledger, the engine, the emulator, time passing -------------------

class Loop:
    """A project whose audience syncs to the Microsoft emulator; `days` moves both clocks."""

    def __init__(self, tmp_path, emulator, **settings: str):
        self.project = Project(tmp_path)
        self.project.set_meta("sync_cart", destination="microsoft_ads", list_name=LIST)
        self.emulator = emulator
        self.env = destination_env(emulator.base, tmp_path, **settings)

    def run(self, plan_only: bool = False):
        wh = Warehouse.connect(load_profile(self.project.root, env={}))
        dest = MicrosoftAdsDestination.from_env(self.env)
        try:
            engine = Engine(load_project(self.project.root), wh, env=self.env, build_destination=lambda kind: dest)
            syncs = engine.project.select(["sync_cart"])
            return engine.plan_all(syncs) if plan_only else engine.sync_all(syncs)
        finally:
            dest.close()
            wh.close()

    def status(self) -> dict:
        wh = Warehouse.connect(load_profile(self.project.root, env={}))
        try:
            project = load_project(self.project.root)
            return status(project, wh, project.select(["sync_cart"]), env=self.env)[0]
        finally:
            wh.close()

    def days(self, days: float) -> None:
        """Time passes: the emulator's membership clock, and the ledger's acknowledgement times."""
        advance(self.emulator, days)
        self.project.sql(f"update {table('members')} set acknowledged_at = acknowledged_at - "
                         f"to_microseconds(cast(? * 86400e6 as bigint))", [days])

    def listed(self) -> set[str]:
        [item] = self.emulator.state()["lists"]
        return set(item["members"])


def test_default_list_keeps_everyone_after_400_days(tmp_path, emulator):
    loop = Loop(tmp_path, emulator)
    loop.project.set_audience_range(0, 40)
    assert loop.run().exit_code == 0
    expected = {h for h, _ in loop.project.audience().values()}
    assert loop.listed() == expected
    loop.days(400)
    assert loop.listed() == expected
    plan = loop.run(plan_only=True).outcomes[0].plan
    assert plan["refreshes"] == 0 and plan["adds"] == 0
    assert loop.status()["refresh_after_days"] is None


def test_a_30_day_list_is_refreshed_and_never_loses_a_member(tmp_path, emulator):
    loop = Loop(tmp_path, emulator, MSADS_MEMBERSHIP_DURATION="30")
    loop.project.set_audience_range(0, 40)
    loop.run()
    expected = {h for h, _ in loop.project.audience().values()}
    assert loop.emulator.state()["lists"][0]["membership_duration"] == 30
    refreshed = 0
    for week in range(1, 58):                   # weekly syncs for 399 days
        loop.days(7)
        assert loop.listed() == expected, f"week {week}: members expired"
        report = loop.run()
        assert report.exit_code == 0, report.outcomes[0].message
        refreshed += report.outcomes[0].plan["refreshes"]
        assert loop.listed() == expected
    assert refreshed == 40 * (57 // 4)           # each member re-added every fourth week (older than 23 days)
    assert loop.status()["refresh_due"] == 0


def test_refresh_is_planned_counted_and_shown_in_status(tmp_path, emulator):
    loop = Loop(tmp_path, emulator, MSADS_MEMBERSHIP_DURATION="30")
    loop.project.set_audience_range(0, 10)
    loop.run()
    loop.days(10)
    loop.project.set_audience_range(0, 12)      # two new members join later
    loop.run()
    shown = loop.status()
    assert shown["refresh_after_days"] == 23 and shown["refresh_due"] == 0
    assert shown["next_refresh_at"] is not None
    loop.days(15)                               # the first ten are 25 days old, the two 15
    assert loop.status()["refresh_due"] == 10
    plan = loop.run(plan_only=True).outcomes[0].plan
    assert (plan["adds"], plan["removes"], plan["refreshes"]) == (0, 0, 10)
    report = loop.run()
    assert report.outcomes[0].sent["adds"] == 10 and report.outcomes[0].plan["refreshes"] == 10
    assert loop.status()["refresh_due"] == 0
    assert loop.run(plan_only=True).outcomes[0].plan["refreshes"] == 0    # no-change again


def test_status_text_names_the_due_refreshes(tmp_path, emulator):
    import io

    from rich.console import Console

    from pusher.tables import print_status

    loop = Loop(tmp_path, emulator, MSADS_MEMBERSHIP_DURATION="30")
    loop.project.set_audience_range(0, 5)
    loop.run()
    loop.days(24)
    buffer = io.StringIO()
    print_status([loop.status()], out=Console(file=buffer, width=200))
    assert "membership refresh: 5 member(s) due (re-added after 23 days)" in buffer.getvalue()


def test_unwritable_token_file_ends_the_sync_with_exit_5_and_a_clear_message(tmp_path, emulator):
    (tmp_path / "not-a-dir").write_text("")
    loop = Loop(tmp_path, emulator, MSADS_TOKEN_FILE=str(tmp_path / "not-a-dir" / "token"))
    loop.project.set_audience_range(0, 5)
    report = loop.run()
    outcome = report.outcomes[0]
    assert report.exit_code == 5 and outcome.status == "config_error"
    assert "MSADS_TOKEN_FILE" in outcome.message and "refresh token was not used" in outcome.message
    assert emulator.state()["lists"] == []


# ---- the matched size Microsoft reports, beside ours ------------------------------------------

def test_status_shows_the_size_microsoft_reports_once_computed(tmp_path, emulator):
    import io

    from rich.console import Console

    from pusher.tables import print_status

    loop = Loop(tmp_path, emulator)
    loop.project.set_audience_range(0, 40)
    loop.run()
    fresh = loop.status()
    assert fresh["destination_size"] == 40
    assert fresh["reported_search_size"] is None and "48 h" in fresh["reported_note"]
    loop.days(2)
    reported = loop.status()
    assert reported["reported_search_size"] == 40 and reported["reported_audience_network_size"] == 40
    assert "under the 300" in reported["reported_warning"]
    buffer = io.StringIO()
    print_status([reported], out=Console(file=buffer, width=200))
    assert "Microsoft reports 40 matched (search), 40 (audience network) of 40 uploaded" in buffer.getvalue()


def test_status_without_microsoft_reports_the_problem_and_goes_on(tmp_path, emulator):
    loop = Loop(tmp_path, emulator)
    loop.project.set_audience_range(0, 3)
    loop.run()
    loop.env["MSADS_DEVELOPER_TOKEN"] = "wrong-token"
    row = loop.status()
    assert "reported_search_size" not in row and "MSADS_DEVELOPER_TOKEN" in row["reported_problem"]
    assert row["destination_size"] == 3
    loop.env["MSADS_STATUS_SIZES"] = "false"
    assert "reported_problem" not in loop.status()


def test_sizes_from_audiences_handles_nulls_gaps_and_big_lists():
    from pusher.destinations.msads_sizes import sizes_from_audiences

    answer = {"Audiences": [{"Id": "1", "SearchSize": "1200", "AudienceNetworkSize": None}, None,
                            {"Id": "3", "SearchSize": None, "AudienceNetworkSize": None}],
              "PartialErrors": [{"Index": 1, "Code": 0}]}
    found = sizes_from_audiences(["1", "2", "3"], answer)
    assert found["1"] == {"reported_search_size": 1200, "reported_audience_network_size": None,
                          "reported_membership_duration": None}
    assert "no Customer List 2" in found["2"]["reported_problem"]
    assert found["3"]["reported_search_size"] is None and "reported_note" in found["3"]


def test_status_flags_a_list_whose_duration_is_not_the_configured_one(tmp_path, emulator):
    loop = Loop(tmp_path, emulator, MSADS_MEMBERSHIP_DURATION="30")     # made by an older setting
    loop.project.set_audience_range(0, 3)
    loop.run()
    assert "reported_duration_warning" not in loop.status()
    del loop.env["MSADS_MEMBERSHIP_DURATION"]                              # now the default, -1
    row = loop.status()
    assert row["reported_membership_duration"] == 30
    assert "MSADS_MEMBERSHIP_DURATION=30" in row["reported_duration_warning"]
