"""MicrosoftAdsDestination against the emulator, over real HTTP on loopback."""

from __future__ import annotations

import json
import os
import stat

import pytest
from msads_helpers import HTTP, destination_env, members, sha

from pusher.destinations import registry
from pusher.destinations.base import ListRef, Member
from pusher.destinations.microsoft_ads import (
    MicrosoftAdsDestination, campaign_base_url, campaign_endpoint, customer_list_ids_named, fault_errors,
)
from pusher.errors import (
    ConfigError, DestinationAuthError, DestinationRequestError, DestinationUnavailable, InputError,
)

NAME = "MSADS__Lapsed_90-120d__NoPurchase"


def made_list(emulator, dest) -> ListRef:
    return ListRef(NAME, dest.ensure_list(ListRef(NAME)))


def test_list_is_created_once_and_its_id_returned(emulator, make_destination):
    dest = make_destination(emulator)
    list_id = dest.ensure_list(ListRef(NAME))
    state = emulator.state()["lists"]
    assert [(item["id"], item["name"], item["scope"]) for item in state] == [(list_id, NAME, "Customer")]
    uploads = emulator.stats()["uploads"]
    assert dest.ensure_list(ListRef(NAME, list_id)) == list_id     # known id: nothing sent
    assert emulator.stats()["uploads"] == uploads == 1
    assert dest.list_members(ListRef(NAME, list_id)) is None


def test_list_settings_reach_the_list(emulator, make_destination):
    dest = make_destination(emulator, MSADS_LIST_SCOPE="Customer", MSADS_MEMBERSHIP_DURATION="45")
    dest.ensure_list(ListRef(NAME))
    [item] = emulator.state()["lists"]
    assert item["scope"] == "Customer" and item["membership_duration"] == 45


def seeded_emulator(start_emulator, tmp_path, lists: list[tuple[str, str]]):
    """An emulator whose state already holds `lists` [(id, name)] (the API refuses duplicates, the state file not)."""
    state_file = tmp_path / "msads-state.json"
    state_file.write_text(json.dumps({"lists": {
        list_id: {"id": list_id, "name": name, "scope": "Customer", "membership_duration": 30, "members": []}
        for list_id, name in lists}, "next_list_id": 800000001, "terms_accepted": True}))
    return start_emulator(state_file=state_file)


def test_lost_ledger_finds_the_list_instead_of_creating_it_again(emulator, make_destination):
    first = make_destination(emulator)
    list_id = first.ensure_list(ListRef(NAME))
    first.close()
    second = make_destination(emulator)          # a new run that remembers no id
    assert second.ensure_list(ListRef(NAME)) == list_id
    assert second.ensure_list(ListRef(NAME)) == list_id      # and again: still no second list
    assert [(item["id"], item["name"]) for item in emulator.state()["lists"]] == [(list_id, NAME)]
    stats = emulator.stats()
    assert stats["uploads"] == 1 and stats["requests"]["AudiencesQueryByIds"] == {"200": 3}


def test_lookup_reuses_only_the_exact_name(start_emulator, make_destination, tmp_path):
    emulator = seeded_emulator(start_emulator, tmp_path, [("700000005", NAME.lower()), ("700000006", NAME + " "),
                                                          ("700000007", NAME)])
    dest = make_destination(emulator)
    assert dest.ensure_list(ListRef(NAME)) == "700000007"
    other = "MSADS__Lapsed_30-60d__NoPurchase"
    created = dest.ensure_list(ListRef(other))             # no exact match: created
    assert created not in ("700000005", "700000006", "700000007")
    assert emulator.stats()["uploads"] == 1 and len(emulator.state()["lists"]) == 4


def test_two_lists_with_the_name_are_a_config_error(start_emulator, make_destination, tmp_path):
    emulator = seeded_emulator(start_emulator, tmp_path, [("700000003", NAME), ("700000009", NAME),
                                                          ("700000004", "MSADS__Other")])
    dest = make_destination(emulator)
    with pytest.raises(ConfigError) as err:
        dest.ensure_list(ListRef(NAME))
    text = str(err.value)
    assert NAME in text and "700000003" in text and "700000009" in text and "700000004" not in text
    assert emulator.stats()["uploads"] == 0 and len(emulator.state()["lists"]) == 3


def test_expired_token_on_the_lookup_is_refreshed_once(emulator, make_destination):
    dest = make_destination(emulator)
    list_id = dest.ensure_list(ListRef(NAME))
    HTTP.post(emulator.base + "/_emulator/expire-tokens")
    assert dest.ensure_list(ListRef(NAME)) == list_id
    stats = emulator.stats()["requests"]
    assert stats["AudiencesQueryByIds"] == {"200": 2, "401": 1}
    assert stats["token"] == {"200": 2}


def test_lookup_expiring_again_after_the_refresh_is_an_auth_error(start_emulator, make_destination):
    emulator = start_emulator(env={"MSADS_EMULATOR_TOKEN_TTL": "0"})    # every token is born expired
    dest = make_destination(emulator)
    with pytest.raises(DestinationAuthError, match="expired again"):
        dest.ensure_list(ListRef(NAME))
    assert emulator.stats()["requests"]["AudiencesQueryByIds"] == {"401": 2}
    assert emulator.stats()["uploads"] == 0


def test_throttled_lookup_waits_then_gives_up_without_creating(start_emulator, tmp_path):
    emulator = start_emulator(env={"MSADS_EMULATOR_FAULTS": "117"}, fail_rate=1.0)
    waits: list[float] = []
    dest = MicrosoftAdsDestination.from_env(destination_env(emulator.base, tmp_path, MSADS_RATE_WAIT_SECONDS="0.3"),
                                            sleep=waits.append)
    try:
        with pytest.raises(DestinationUnavailable, match="117") as err:
            dest.ensure_list(ListRef(NAME))
    finally:
        dest.close()
    assert "look up list" in str(err.value)
    assert len([w for w in waits if w >= 0.25]) == dest.max_throttle_retries
    assert set(emulator.stats()["requests"]) == {"token", "AudiencesQueryByIds"}


def test_campaign_url_setting_is_used_for_the_lookup(emulator, make_destination, tmp_path):
    full = make_destination(emulator, MSADS_CAMPAIGN_URL=emulator.base + "/CampaignManagement/v13/")
    list_id = full.ensure_list(ListRef(NAME))
    assert make_destination(emulator, MSADS_CAMPAIGN_URL=emulator.base).ensure_list(ListRef(NAME)) == list_id
    nowhere = MicrosoftAdsDestination.from_env(
        destination_env(emulator.base, tmp_path, MSADS_CAMPAIGN_URL="http://127.0.0.1:9"), sleep=lambda s: None)
    try:
        with pytest.raises(DestinationUnavailable):
            nowhere.ensure_list(ListRef("MSADS__Never_Created"))
    finally:
        nowhere.close()
    assert [item["id"] for item in emulator.state()["lists"]] == [list_id]


@pytest.mark.parametrize("bulk, campaign", [
    ("https://bulk.api.bingads.microsoft.com", "https://campaign.api.bingads.microsoft.com"),
    ("https://bulk.api.sandbox.bingads.microsoft.com/", "https://campaign.api.sandbox.bingads.microsoft.com"),
    ("http://127.0.0.1:8765", "http://127.0.0.1:8765"),
    ("http://127.0.0.1:8765/msads/", "http://127.0.0.1:8765/msads"),
])
def test_campaign_base_follows_the_bulk_url(bulk, campaign):
    assert campaign_base_url(bulk) == campaign
    assert campaign_endpoint(campaign) == campaign + "/CampaignManagement/v13"


def test_customer_list_ids_named_skips_nulls_other_types_and_near_names():
    audiences = [None, {"Id": 5, "Name": NAME, "Type": "CustomerList"},
                 {"Id": "6", "Name": NAME, "Type": "RemarketingList"}, {"Id": "7", "Name": NAME.upper()},
                 {"Id": "8", "Name": NAME}]
    assert customer_list_ids_named(audiences, NAME) == ["5", "8"]
    assert customer_list_ids_named(None, NAME) == []


def test_terms_rejected_by_the_user_surface_8003(emulator, make_destination):
    dest = make_destination(emulator, MSADS_ACCEPT_TERMS="false")
    with pytest.raises(DestinationRequestError, match="8003"):
        dest.ensure_list(ListRef(NAME))


def test_terms_cell_is_empty_by_default_and_true_when_set(emulator, make_destination, tmp_path):
    default = make_destination(emulator)
    assert default.accept_terms is None
    ref = made_list(emulator, default)        # empty cell: the UI's acceptance applies
    default.add_members(ref, members(2))
    assert len(emulator.members_of(ref.external_id)) == 2
    assert make_destination(emulator, MSADS_ACCEPT_TERMS="true").accept_terms is True


def test_2500_members_in_files_of_1000(emulator, make_destination):
    dest = make_destination(emulator, MSADS_MAX_ROWS_PER_FILE="1000")
    ref = made_list(emulator, dest)
    batch = members(2500)
    result = dest.add_members(ref, batch)
    assert sorted(result.accepted) == sorted(m.key for m in batch) and result.rejected == {}
    assert emulator.stats()["uploads"] == 1 + 3
    assert emulator.members_of(ref.external_id) == {m.email_sha256 for m in batch}


def test_remove_replays_the_exact_hashes(emulator, make_destination):
    dest = make_destination(emulator)
    ref = made_list(emulator, dest)
    batch = members(10)
    dest.add_members(ref, batch)
    result = dest.remove_members(ref, batch[:4])
    assert result.accepted == [m.key for m in batch[:4]]
    assert emulator.members_of(ref.external_id) == {m.email_sha256 for m in batch[4:]}


def test_replace_wipes_then_adds_even_across_files(emulator, make_destination):
    dest = make_destination(emulator, MSADS_MAX_ROWS_PER_FILE="3")
    ref = made_list(emulator, dest)
    dest.add_members(ref, members(5))
    newcomers = members(7, start=100)
    result = dest.add_members(ref, newcomers, replace=True)
    assert len(result.accepted) == 7
    assert emulator.members_of(ref.external_id) == {m.email_sha256 for m in newcomers}
    dest.add_members(ref, [], replace=True)        # replace with nothing empties the list
    assert emulator.members_of(ref.external_id) == set()


def test_per_row_error_is_recorded_against_the_right_key(start_emulator, make_destination):
    batch = members(6)
    unlucky = batch[3]
    emulator = start_emulator(env={"MSADS_EMULATOR_ROW_FAULT_TEXTS": unlucky.email_sha256})
    dest = make_destination(emulator)
    ref = made_list(emulator, dest)
    result = dest.add_members(ref, batch)
    assert set(result.rejected) == {unlucky.key}
    assert result.rejected[unlucky.key].startswith("0 InternalError")
    assert sorted(result.accepted) == sorted(m.key for m in batch if m is not unlucky)
    assert emulator.members_of(ref.external_id) == {m.email_sha256 for m in batch if m is not unlucky}


@pytest.mark.parametrize("bad", ["Jane.Doe@Example.com", sha("x@y.z").upper(), "abc123", None])
def test_raw_email_or_bad_hash_is_never_sent(emulator, make_destination, bad):
    dest = make_destination(emulator)
    ref = ListRef(NAME, "700000001")
    batch = members(3) + [Member(key="cust-7", email_sha256=bad)]
    for send in (lambda: dest.add_members(ref, batch), lambda: dest.remove_members(ref, batch),
                 lambda: dest.add_members(ref, batch, replace=True)):
        with pytest.raises(InputError) as err:
            send()
        assert "cust-7" in str(err.value)
        if bad:
            assert bad not in str(err.value)
    assert emulator.stats() == {"requests": {}, "uploads": 0, "rows": 0, "upload_auth_headers": {},
                                "applied_items": 0}


def test_rotated_refresh_token_is_persisted_0600_and_reused(emulator, make_destination, tmp_path):
    first = make_destination(emulator)
    ref = made_list(emulator, first)
    token_file = tmp_path / "msads-token"
    saved = token_file.read_text().strip()
    assert saved and saved != "demo-refresh-token"
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    first.close()
    # The emulator revoked demo-refresh-token on rotation: only the saved token can work now.
    second = make_destination(emulator)
    assert second.add_members(ref, members(2)).rejected == {}
    assert token_file.read_text().strip() not in (saved, "demo-refresh-token")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")] == []


def test_stale_token_file_falls_back_to_the_environment_token(emulator, make_destination, tmp_path):
    token_file = tmp_path / "msads-token"
    token_file.write_text("rt-long-revoked\n")
    dest = make_destination(emulator)
    dest.ensure_list(ListRef(NAME))
    assert token_file.read_text().strip() not in ("rt-long-revoked", "demo-refresh-token")
    assert emulator.stats()["requests"]["token"] == {"400": 1, "200": 1}


def test_refused_refresh_token_is_an_auth_error_without_secrets(emulator, make_destination):
    dest = make_destination(emulator, MSADS_REFRESH_TOKEN="my-very-secret-refresh-token",
                            MSADS_CLIENT_SECRET="my-very-secret-client-secret")
    with pytest.raises(DestinationAuthError) as err:
        dest.ensure_list(ListRef(NAME))
    text = str(err.value)
    assert "invalid_grant" in text and "MSADS_REFRESH_TOKEN" in text
    assert "my-very-secret" not in text


def test_wrong_developer_token_is_an_auth_error_without_secrets(emulator, make_destination):
    dest = make_destination(emulator, MSADS_DEVELOPER_TOKEN="dev-token-that-is-secret")
    with pytest.raises(DestinationAuthError) as err:
        dest.ensure_list(ListRef(NAME))
    text = str(err.value)
    assert "105" in text and "dev-token-that-is-secret" not in text
    assert "demo-refresh-token" not in text and "at-" not in text and "rt-" not in text


def test_expired_access_token_is_refreshed_once(emulator, make_destination):
    dest = make_destination(emulator, MSADS_APPLY_MAX_ITEMS="0")
    ref = made_list(emulator, dest)
    HTTP.post(emulator.base + "/_emulator/expire-tokens")
    assert dest.add_members(ref, members(4)).rejected == {}
    stats = emulator.stats()["requests"]
    assert stats["token"] == {"200": 2}
    assert stats["BulkUploadUrl"]["401"] == 1
    assert emulator.members_of(ref.external_id) == {m.email_sha256 for m in members(4)}


def test_throttling_4204_and_117_is_waited_out(start_emulator, tmp_path):
    emulator = start_emulator(env={"MSADS_EMULATOR_FAULTS": "4204,117"}, fail_rate=0.35, seed=3)
    waits: list[float] = []
    dest = MicrosoftAdsDestination.from_env(
        destination_env(emulator.base, tmp_path, MSADS_MAX_ROWS_PER_FILE="50",
                        MSADS_THROTTLE_MAX_WAIT_SECONDS="0.5", MSADS_RATE_WAIT_SECONDS="0.25"),
        sleep=waits.append)
    try:
        ref = ListRef(NAME, dest.ensure_list(ListRef(NAME)))
        batch = members(300)
        result = dest.add_members(ref, batch)
    finally:
        dest.close()
    assert result.rejected == {} and len(result.accepted) == 300
    assert emulator.members_of(ref.external_id) == {m.email_sha256 for m in batch}
    refused = sum(by_status.get("400", 0) for by_status in emulator.stats()["requests"].values())
    assert refused > 0
    throttle_waits = [w for w in waits if w >= 0.2]
    assert len(throttle_waits) >= refused and max(waits) <= 0.5


def test_endless_throttling_gives_up_as_unavailable(start_emulator, tmp_path):
    emulator = start_emulator(env={"MSADS_EMULATOR_FAULTS": "4204"}, fail_rate=1.0)
    dest = MicrosoftAdsDestination.from_env(destination_env(emulator.base, tmp_path), sleep=lambda s: None)
    try:
        with pytest.raises(DestinationUnavailable, match="4204"):
            dest.ensure_list(ListRef(NAME))
    finally:
        dest.close()


def test_server_errors_are_retried(start_emulator, tmp_path):
    emulator = start_emulator(env={"MSADS_EMULATOR_FAULTS": "503"}, fail_rate=0.3, seed=11)
    dest = MicrosoftAdsDestination.from_env(destination_env(emulator.base, tmp_path), sleep=lambda s: None)
    try:
        ref = ListRef(NAME, dest.ensure_list(ListRef(NAME)))
        assert dest.add_members(ref, members(20)).rejected == {}
    finally:
        dest.close()
    assert sum(by.get("503", 0) for by in emulator.stats()["requests"].values()) > 0
    assert emulator.members_of(ref.external_id) == {m.email_sha256 for m in members(20)}


def test_a_file_refused_as_a_whole_raises_with_the_reason(start_emulator, make_destination):
    emulator = start_emulator(env={"MSADS_EMULATOR_MAX_ROWS": "4"})
    dest = make_destination(emulator, MSADS_MAX_ROWS_PER_FILE="10", MSADS_APPLY_MAX_ITEMS="0")
    ref = made_list(emulator, dest)
    with pytest.raises(DestinationRequestError, match="UploadFileRowCountExceeded"):
        dest.add_members(ref, members(5))


def test_poll_timeout_is_unavailable(emulator, make_destination):
    dest = make_destination(emulator, MSADS_POLL_TIMEOUT_SECONDS="0")
    with pytest.raises(DestinationUnavailable, match="MSADS_POLL_TIMEOUT_SECONDS"):
        dest.ensure_list(ListRef(NAME))


@pytest.mark.parametrize("missing", ["MSADS_DEVELOPER_TOKEN", "MSADS_CLIENT_ID", "MSADS_REFRESH_TOKEN",
                                     "MSADS_CUSTOMER_ID", "MSADS_ACCOUNT_ID"])
def test_missing_setting_names_the_variable(tmp_path, missing):
    env = destination_env("http://127.0.0.1:9", tmp_path)
    del env[missing]
    with pytest.raises(ConfigError, match=missing):
        MicrosoftAdsDestination.from_env(env)


@pytest.mark.parametrize("name, value", [("MSADS_LIST_SCOPE", "Galaxy"), ("MSADS_LIST_SCOPE", "Account"),
                                         ("MSADS_ENVIRONMENT", "staging"), ("MSADS_SANDBOX_LOGIN", "x"),
                                         ("MSADS_MAX_FILE_BYTES", "100000001"), ("MSADS_MEMBERSHIP_DURATION", "0"),
                                         ("MSADS_MEMBERSHIP_DURATION", "391"), ("MSADS_ACCEPT_TERMS", "maybe"),
                                         ("MSADS_MAX_ROWS_PER_FILE", "4000000"), ("MSADS_ACCOUNT_ID", "abc")])
def test_bad_setting_is_a_config_error(tmp_path, name, value):
    with pytest.raises(ConfigError, match=name):
        MicrosoftAdsDestination.from_env(destination_env("http://127.0.0.1:9", tmp_path, **{name: value}))


def test_rows_per_file_never_exceeds_the_documented_limit(tmp_path):
    dest = MicrosoftAdsDestination.from_env(destination_env("http://127.0.0.1:9", tmp_path,
                                                            MSADS_MAX_ROWS_PER_FILE="3999998"))
    assert dest.max_members_per_request == 3_999_998
    dest.close()
    default = MicrosoftAdsDestination.from_env(destination_env("http://127.0.0.1:9", tmp_path))
    assert default.max_members_per_request == 100_000 and default.supports_replace
    default.close()


# ---- the upload step's flat error bodies ---------------------------------------------------

def test_fault_errors_reads_the_envelope_the_flat_body_and_a_list_of_flat_errors():
    envelope = {"OperationErrors": [{"Code": 4204, "ErrorCode": "X", "Message": "m"}], "BatchErrors": []}
    flat = {"TrackingId": "t", "Code": 3224, "ErrorCode": "Used", "Message": "used"}
    assert fault_errors(envelope) == [(4204, "X", "m")]
    assert fault_errors(flat) == [(3224, "Used", "used")]
    assert fault_errors([flat, {"Code": "3227"}]) == [(3224, "Used", "used"), (3227, "", "")]
    assert fault_errors({"TrackingId": "t"}) == [] and fault_errors("text") == []


@pytest.mark.parametrize("code", [3224, 3226, 3227, 4204, 117])
def test_upload_step_failures_get_a_new_url_and_succeed(emulator, make_destination, code):
    dest = make_destination(emulator, MSADS_APPLY_MAX_ITEMS="0")
    ref = made_list(emulator, dest)
    HTTP.post(emulator.base + "/_emulator/upload-faults", json={"codes": [code, code]})
    result = dest.add_members(ref, members(3))
    assert len(result.accepted) == 3 and not result.rejected
    assert len(emulator.members_of(ref.external_id)) == 3
    assert emulator.stats()["requests"]["FileUpload"] == {"200": 2, "400": 2}   # create, then 2 refused + 1
    assert emulator.stats()["requests"]["BulkUploadUrl"]["200"] == 4             # a new URL each time


def test_upload_backs_off_on_3227_and_honours_the_wait_setting(emulator, tmp_path):
    waits: list[float] = []
    dest = MicrosoftAdsDestination.from_env(destination_env(emulator.base, tmp_path, MSADS_RATE_WAIT_SECONDS="0.5",
                                                            MSADS_APPLY_MAX_ITEMS="0"), sleep=waits.append)
    try:
        ref = made_list(emulator, dest)
        HTTP.post(emulator.base + "/_emulator/upload-faults", json={"codes": [3227, 3224]})
        dest.add_members(ref, members(1))
    finally:
        dest.close()
    backoffs = [w for w in waits if w >= 0.4]
    assert len(backoffs) == 1 and backoffs[0] <= 0.5       # 3227 waited, 3224 retried at once


def test_upload_failing_past_the_retries_is_unavailable(emulator, make_destination):
    dest = make_destination(emulator, MSADS_MAX_THROTTLE_RETRIES="3", MSADS_APPLY_MAX_ITEMS="0")
    ref = made_list(emulator, dest)
    HTTP.post(emulator.base + "/_emulator/upload-faults", json={"codes": [3227] * 10})
    with pytest.raises(DestinationUnavailable, match="3227") as raised:
        dest.add_members(ref, members(2))
    assert raised.value.exit_code == 6
    assert emulator.members_of(ref.external_id) == set()


def test_upload_sends_both_auth_headers(emulator, make_destination):
    dest = make_destination(emulator, MSADS_APPLY_MAX_ITEMS="0")
    dest.add_members(made_list(emulator, dest), members(1))
    assert emulator.stats()["upload_auth_headers"] == {"Authorization": 2, "AuthenticationToken": 2}


# ---- environments, row and byte limits -----------------------------------------------------

def test_environment_sets_hosts_scope_and_row_limit(tmp_path):
    env = {k: v for k, v in destination_env("http://127.0.0.1:9", tmp_path).items()
           if k not in ("MSADS_BULK_URL", "MSADS_TOKEN_URL")}
    production = MicrosoftAdsDestination.from_env(env)
    sandbox = MicrosoftAdsDestination.from_env({**env, "MSADS_ENVIRONMENT": "sandbox"})
    ppe = MicrosoftAdsDestination.from_env({**env, "MSADS_ENVIRONMENT": "sandbox", "MSADS_SANDBOX_LOGIN": "ppe"})
    try:
        assert production._bulk_base == "https://bulk.api.bingads.microsoft.com/Bulk/v13"
        assert production._campaign_base == "https://campaign.api.bingads.microsoft.com/CampaignManagement/v13"
        assert production._tokens._scope == "https://ads.microsoft.com/msads.manage offline_access"
        assert production.max_members_per_request == 100_000
        assert sandbox._bulk_base == "https://bulk.api.sandbox.bingads.microsoft.com/Bulk/v13"
        assert sandbox._campaign_base == "https://campaign.api.sandbox.bingads.microsoft.com/CampaignManagement/v13"
        assert sandbox._tokens._scope == "https://si.ads.microsoft.com/msads.manage offline_access"
        assert sandbox.max_members_per_request == 19_998
        assert ppe._tokens._url == "https://login.windows-ppe.net/consumers/oauth2/v2.0/token"
        assert ppe._tokens._scope == "https://api.ads.microsoft.com/msads.manage offline_access"
    finally:
        for dest in (production, sandbox, ppe):
            dest.close()
    with pytest.raises(ConfigError, match="MSADS_MAX_ROWS_PER_FILE"):
        MicrosoftAdsDestination.from_env({**env, "MSADS_ENVIRONMENT": "sandbox", "MSADS_MAX_ROWS_PER_FILE": "20000"})


def test_sandbox_sync_against_a_sandbox_emulator(start_emulator, tmp_path):
    emulator = start_emulator(env={"MSADS_EMULATOR_ENVIRONMENT": "sandbox", "MSADS_EMULATOR_MAX_ROWS": "30"})
    dest = MicrosoftAdsDestination.from_env(destination_env(emulator.base, tmp_path, MSADS_ENVIRONMENT="sandbox",
                                                            MSADS_MAX_ROWS_PER_FILE="25"))
    try:
        ref = made_list(emulator, dest)
        assert len(dest.add_members(ref, members(60)).accepted) == 60
    finally:
        dest.close()
    assert len(emulator.members_of(ref.external_id)) == 60


def test_files_are_split_by_bytes_too(start_emulator, tmp_path):
    emulator = start_emulator(env={"MSADS_EMULATOR_MAX_FILE_BYTES": "3000"})
    dest = MicrosoftAdsDestination.from_env(destination_env(emulator.base, tmp_path, MSADS_MAX_FILE_BYTES="3000",
                                                            MSADS_APPLY_MAX_ITEMS="0"))
    try:
        ref = made_list(emulator, dest)
        uploads = emulator.stats()["uploads"]
        result = dest.add_members(ref, members(100), replace=True)
    finally:
        dest.close()
    assert len(result.accepted) == 100 and len(emulator.members_of(ref.external_id)) == 100
    assert emulator.stats()["uploads"] - uploads >= 4           # about 24 members per 3,000-byte file


# ---- MSADS_TOKEN_FILE: checked before the refresh token is spent; relative to the project ----

@pytest.mark.parametrize("where", ["parent is a file", "path is a directory"])
def test_unwritable_token_file_stops_before_the_refresh_token_is_spent(emulator, make_destination, tmp_path, where):
    blocker = tmp_path / "blocker"
    if where == "parent is a file":
        blocker.write_text("not a directory")
        token_file = blocker / "msads-token"
    else:
        blocker.mkdir()
        token_file = blocker
    dest = make_destination(emulator, MSADS_TOKEN_FILE=str(token_file))
    with pytest.raises(ConfigError, match="MSADS_TOKEN_FILE") as raised:
        dest.ensure_list(ListRef(NAME))
    assert raised.value.exit_code == 5 and "refresh token was not used" in str(raised.value)
    assert "token" not in emulator.stats()["requests"]            # no refresh was attempted
    # The environment's refresh token still works (it was not rotated away).
    fixed = make_destination(emulator, MSADS_TOKEN_FILE=str(tmp_path / "fixed" / "token"))
    assert fixed.ensure_list(ListRef(NAME))


def test_relative_token_file_lives_in_the_project_directory(emulator, tmp_path, monkeypatch):
    project_dir, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project_dir.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    env = destination_env(emulator.base, tmp_path, MSADS_TOKEN_FILE="secrets/msads-token")
    dest = registry.build("microsoft_ads", env, project_dir)
    try:
        dest.ensure_list(ListRef(NAME))
    finally:
        dest.close()
    assert (project_dir / "secrets" / "msads-token").read_text().startswith("rt-")
    assert not (elsewhere / "secrets").exists()
