"""The emulator refuses what the real API refuses, the way it refuses it (raw HTTP, no destination)."""

from __future__ import annotations

import httpx
import pytest
from msads_helpers import HTTP, members, sha

from pusher.destinations.msads_bulk_file import (
    ListRow, build_rows, build_upload, read_bulk_file, write_csv, zip_csv,
)

TOKEN_PATH = "/common/oauth2/v2.0/token"
SCOPE = "https://ads.microsoft.com/msads.manage offline_access"


def grant(base: str, refresh_token: str = "demo-refresh-token", **override) -> httpx.Response:
    form = {"client_id": "demo-client", "grant_type": "refresh_token", "refresh_token": refresh_token,
            "scope": SCOPE, **override}
    return HTTP.post(base + TOKEN_PATH, data=form)


def headers(access: str, **override: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access}", "DeveloperToken": "demo-developer-token",
            "CustomerId": "1000", "CustomerAccountId": "2000", **override}


def access_token(base: str) -> str:
    return grant(base).json()["access_token"]


def fault_codes(response: httpx.Response) -> list[int]:
    """Codes of an operation-error envelope (the JSON calls)."""
    body = response.json()
    return [e["Code"] for key in ("Errors", "OperationErrors", "BatchErrors") for e in body.get(key) or []]


def flat_fault_code(response: httpx.Response) -> int:
    """The code of the upload step's flat error body (never the envelope)."""
    body = response.json()
    assert response.status_code >= 400 and not {"Errors", "OperationErrors", "BatchErrors"} & set(body), body
    assert {"Code", "ErrorCode", "Message"} <= set(body), body
    return body["Code"]


def new_upload_url(base: str, access: str) -> dict:
    response = HTTP.post(base + "/Bulk/v13/BulkUploadUrl/Query", headers=headers(access),
                          json={"AccountId": "2000", "ResponseMode": "ErrorsAndResults"})
    assert response.status_code == 200, response.text
    return response.json()


def upload(base: str, access: str, data: bytes) -> tuple[dict, httpx.Response]:
    slot = new_upload_url(base, access)
    response = HTTP.post(slot["UploadUrl"], headers=headers(access, AccountId="2000"),
                          files={"file": ("upload.zip", data, "application/zip")})
    return slot, response


def final_status(base: str, access: str, request_id: str) -> tuple[list[str], dict]:
    seen = []
    for _ in range(10):
        answer = HTTP.post(base + "/Bulk/v13/BulkUploadStatus/Query", headers=headers(access),
                            json={"RequestId": request_id}).json()
        seen.append(answer["RequestStatus"])
        if answer["RequestStatus"] not in ("PendingFileUpload", "FileUploaded", "InProgress"):
            return seen, answer
    raise AssertionError(f"never finished: {seen}")


def run_file(base: str, access: str, data: bytes) -> tuple[dict, list[dict]]:
    slot, response = upload(base, access, data)
    assert response.status_code == 200, response.text
    _, answer = final_status(base, access, slot["RequestId"])
    records = []
    if answer.get("ResultFileUrl"):
        _, records = read_bulk_file(HTTP.get(answer["ResultFileUrl"]).content)
    return answer, records


def create_list(base: str, access: str, name: str = "MSADS__Test") -> str:
    answer, records = run_file(base, access, build_upload(ListRow("-1", name, accept_terms=True), []))
    assert answer["RequestStatus"] == "Completed"
    return records[0]["Id"]


# ---- OAuth ---------------------------------------------------------------------------------

def test_token_endpoint_checks_form_grant_client_and_scope(emulator):
    base = emulator.base
    as_json = HTTP.post(base + TOKEN_PATH, json={"grant_type": "refresh_token", "client_id": "demo-client",
                                                  "refresh_token": "demo-refresh-token", "scope": SCOPE})
    assert as_json.status_code == 400 and as_json.json()["error"] == "invalid_request"
    assert grant(base, grant_type="client_credentials").json()["error"] == "unsupported_grant_type"
    assert grant(base, client_id="someone-else").json()["error"] == "unauthorized_client"
    assert grant(base, scope="openid offline_access").json()["error"] == "invalid_scope"
    assert grant(base, refresh_token="made-up").json()["error"] == "invalid_grant"


def test_refresh_tokens_rotate_and_the_used_one_is_revoked(emulator):
    first = grant(emulator.base)
    assert first.status_code == 200
    body = first.json()
    assert body["refresh_token"] != "demo-refresh-token" and body["expires_in"] == 3600
    again = grant(emulator.base)               # the original token was rotated away
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert grant(emulator.base, body["refresh_token"]).status_code == 200


def test_expired_access_token_answers_109(start_emulator):
    emulator = start_emulator(env={"MSADS_EMULATOR_TOKEN_TTL": "0"})
    access = access_token(emulator.base)
    response = HTTP.post(emulator.base + "/Bulk/v13/BulkUploadUrl/Query", headers=headers(access),
                          json={"AccountId": "2000"})
    assert response.status_code == 401 and fault_codes(response) == [109]
    assert response.json()["Errors"][0]["ErrorCode"] == "AuthenticationTokenExpired"


# ---- headers -------------------------------------------------------------------------------

@pytest.mark.parametrize("override, code", [
    ({"Authorization": "Bearer not-a-token"}, 105),
    ({"Authorization": ""}, 105),
    ({"DeveloperToken": "wrong"}, 105),
    ({"CustomerId": "999"}, 106),
    ({"CustomerAccountId": "2001"}, 1102),      # header differs from the body's AccountId
])
def test_bulk_calls_need_the_four_headers(emulator, override, code):
    access = access_token(emulator.base)
    response = HTTP.post(emulator.base + "/Bulk/v13/BulkUploadUrl/Query", headers=headers(access, **override),
                          json={"AccountId": "2000"})
    assert response.status_code in (400, 401)
    assert fault_codes(response) == [code]


def test_account_other_than_the_users_is_refused(emulator):
    access = access_token(emulator.base)
    response = HTTP.post(emulator.base + "/Bulk/v13/BulkUploadUrl/Query",
                          headers=headers(access, CustomerAccountId="3000"), json={"AccountId": "3000"})
    assert fault_codes(response) == [106]


# ---- upload URLs ---------------------------------------------------------------------------

def test_upload_url_is_single_use(emulator):
    access = access_token(emulator.base)
    data = build_upload(ListRow("-1", "MSADS__Once", accept_terms=True), [])
    slot, first = upload(emulator.base, access, data)
    assert first.status_code == 200
    second = HTTP.post(slot["UploadUrl"], headers=headers(access, AccountId="2000"),
                        files={"file": ("upload.zip", data, "application/zip")})
    assert flat_fault_code(second) == 3224


def test_upload_url_expires(start_emulator):
    emulator = start_emulator(env={"MSADS_EMULATOR_UPLOAD_URL_TTL": "0"})
    access = access_token(emulator.base)
    _, response = upload(emulator.base, access, build_upload(ListRow("-1", "MSADS__Late", accept_terms=True), []))
    assert flat_fault_code(response) == 3226


def test_upload_needs_a_multipart_file_field(emulator):
    access = access_token(emulator.base)
    slot = new_upload_url(emulator.base, access)
    response = HTTP.post(slot["UploadUrl"], headers=headers(access, AccountId="2000"),
                          files={"upload": ("x.zip", b"PK", "application/zip")})
    assert flat_fault_code(response) == 3214


def test_status_before_the_file_arrives_is_pending_file_upload(emulator):
    access = access_token(emulator.base)
    slot = new_upload_url(emulator.base, access)
    answer = HTTP.post(emulator.base + "/Bulk/v13/BulkUploadStatus/Query", headers=headers(access),
                       json={"RequestId": slot["RequestId"]}).json()
    assert answer["RequestStatus"] == "PendingFileUpload"


@pytest.mark.parametrize("auth, status", [
    ({"Authorization": "Bearer {t}"}, 200),
    ({"Authorization": "", "AuthenticationToken": "{t}"}, 200),
    ({"Authorization": "Bearer {t}", "AuthenticationToken": "{t}"}, 200),
    ({"Authorization": "Bearer nope", "AuthenticationToken": "{t}"}, 200),     # at least one valid
    ({"Authorization": "", "AuthenticationToken": "nope"}, 105),
    ({"Authorization": ""}, 105),
])
def test_upload_takes_a_bearer_or_an_authentication_token_header(emulator, auth, status):
    access = access_token(emulator.base)
    slot = new_upload_url(emulator.base, access)
    sent = headers(access, AccountId="2000", **{k: v.format(t=access) for k, v in auth.items()})
    sent = {k: v for k, v in sent.items() if v}
    response = HTTP.post(slot["UploadUrl"], headers=sent,
                         files={"file": ("upload.zip", build_upload(ListRow("-1", "MSADS__Auth"), []), "application/zip")})
    assert (response.status_code if status == 200 else flat_fault_code(response)) == status


def test_json_calls_need_the_bearer_header_not_the_token_header(emulator):
    access = access_token(emulator.base)
    sent = {k: v for k, v in headers(access, AuthenticationToken=access).items() if k != "Authorization"}
    response = HTTP.post(emulator.base + "/Bulk/v13/BulkUploadUrl/Query", headers=sent,
                         json={"AccountId": "2000", "ResponseMode": "ErrorsAndResults"})
    assert fault_codes(response) == [105]


def test_upload_faults_knob_answers_the_next_uploads_flat(emulator):
    access = access_token(emulator.base)
    HTTP.post(emulator.base + "/_emulator/upload-faults", json={"codes": [3227, 4204]})
    data = build_upload(ListRow("-1", "MSADS__Knob"), [])
    assert flat_fault_code(upload(emulator.base, access, data)[1]) == 3227
    assert flat_fault_code(upload(emulator.base, access, data)[1]) == 4204
    assert upload(emulator.base, access, data)[1].status_code == 200


def test_a_sixth_concurrent_upload_is_refused_until_one_finishes(emulator):
    access = access_token(emulator.base)
    data = build_upload(ListRow("-1", "MSADS__Busy", accept_terms=True), [])
    running = [upload(emulator.base, access, data) for _ in range(5)]
    assert all(response.status_code == 200 for _, response in running)
    sixth = new_upload_url(emulator.base, access)
    send = lambda: HTTP.post(sixth["UploadUrl"], headers=headers(access, AccountId="2000"),  # noqa: E731
                             files={"file": ("upload.zip", data, "application/zip")})
    assert flat_fault_code(send()) == 3227
    final_status(emulator.base, access, running[0][0]["RequestId"])     # one upload finishes
    assert send().status_code == 200, "the refused URL stays unused: it works once a slot is free"


def test_an_upload_nobody_polls_frees_its_slot_after_the_slot_time(start_emulator):
    emulator = start_emulator(env={"MSADS_EMULATOR_MAX_CONCURRENT_UPLOADS": "1",
                                   "MSADS_EMULATOR_UPLOAD_SLOT_SECONDS": "0"})
    access = access_token(emulator.base)
    data = build_upload(ListRow("-1", "MSADS__Gone", accept_terms=True), [])
    assert [upload(emulator.base, access, data)[1].status_code for _ in range(2)] == [200, 200]


# ---- file format ---------------------------------------------------------------------------

def test_status_moves_from_uploaded_to_in_progress_to_completed(emulator):
    access = access_token(emulator.base)
    slot, _ = upload(emulator.base, access, build_upload(ListRow("-1", "MSADS__Steps", accept_terms=True), []))
    seen, answer = final_status(emulator.base, access, slot["RequestId"])
    assert seen == ["PendingFileUpload", "FileUploaded", "InProgress", "Completed"]
    assert answer["PercentComplete"] == 100 and answer["ResultFileUrl"]


def test_a_bare_csv_is_not_a_supported_format(emulator):
    access = access_token(emulator.base)
    answer, _ = run_file(emulator.base, access, write_csv(build_rows(ListRow("-1", "MSADS__Csv"), [])))
    assert answer["RequestStatus"] == "UploadFileFormatNotSupported"


def test_csv_without_bom_fails(emulator):
    access = access_token(emulator.base)
    csv_bytes = write_csv(build_rows(ListRow("-1", "MSADS__NoBom", accept_terms=True), []))[3:]
    answer, _ = run_file(emulator.base, access, zip_csv(csv_bytes))
    assert answer["RequestStatus"] == "Failed" and answer["Errors"][0]["Code"] == 3220
    assert emulator.state()["lists"] == []


def test_format_version_other_than_6_fails_with_3217(emulator):
    access = access_token(emulator.base)
    csv_bytes = write_csv(build_rows(ListRow("-1", "MSADS__V5", accept_terms=True), [])).replace(b",6.0,", b",5.0,")
    answer, _ = run_file(emulator.base, access, zip_csv(csv_bytes))
    assert answer["RequestStatus"] == "Failed" and answer["Errors"][0]["Code"] == 3217


def test_row_limit(start_emulator):
    emulator = start_emulator(env={"MSADS_EMULATOR_MAX_ROWS": "5"})
    access = access_token(emulator.base)
    list_id = create_list(emulator.base, access)
    hashes = [m.email_sha256 for m in members(5)]
    answer, _ = run_file(emulator.base, access, build_upload(ListRow(list_id, accept_terms=True), hashes))
    assert answer["RequestStatus"] == "UploadFileRowCountExceeded"
    assert emulator.members_of(list_id) == set()
    answer, _ = run_file(emulator.base, access, build_upload(ListRow(list_id, accept_terms=True), hashes[:3]))
    assert answer["RequestStatus"] == "Completed"      # 3 items + the list row + the Format Version row


# ---- per-row validation --------------------------------------------------------------------

def errors_by_client_id(records: list[dict]) -> dict[str, str]:
    return {r["Client Id"]: r["Error Number"] for r in records if r["Type"].endswith(" Error")}


def test_item_rows_are_validated_into_the_result_file(emulator):
    access = access_token(emulator.base)
    list_id = create_list(emulator.base, access)
    good = sha("good@example.com")
    rows = [
        {"Type": "Customer List", "Id": list_id, "Client Id": "list", "Action Type": "Add",
         "Accept Customer Match Term": "True"},
        {"Type": "Customer List Item", "Parent Id": list_id, "Client Id": "ok", "Sub Type": "Email", "Text": good},
        {"Type": "Customer List Item", "Parent Id": list_id, "Client Id": "raw", "Sub Type": "Email",
         "Text": "someone@example.com"},
        {"Type": "Customer List Item", "Parent Id": list_id, "Client Id": "upper", "Sub Type": "Email",
         "Text": good.upper()},
        {"Type": "Customer List Item", "Parent Id": list_id, "Client Id": "empty", "Sub Type": "Email", "Text": ""},
        {"Type": "Customer List Item", "Parent Id": list_id, "Client Id": "phone", "Sub Type": "Phone",
         "Text": sha("x")},
        {"Type": "Customer List Item", "Parent Id": "424242", "Client Id": "orphan", "Sub Type": "Email",
         "Text": sha("y")},
    ]
    answer, records = run_file(emulator.base, access, zip_csv(write_csv(rows)))
    assert answer["RequestStatus"] == "CompletedWithErrors"
    assert errors_by_client_id(records) == {"raw": "8004", "upper": "8004", "empty": "8006", "phone": "8002",
                                            "orphan": "8000"}
    assert emulator.members_of(list_id) == {good}


def test_items_without_a_list_row_in_the_file_are_refused(emulator):
    access = access_token(emulator.base)
    list_id = create_list(emulator.base, access)
    rows = [{"Type": "Customer List Item", "Parent Id": list_id, "Client Id": "i0", "Sub Type": "Email",
             "Text": sha("a@b.c")}]
    _, records = run_file(emulator.base, access, zip_csv(write_csv(rows)))
    assert errors_by_client_id(records) == {"i0": "8000"}
    assert emulator.members_of(list_id) == set()


def test_list_row_rules(emulator):
    access = access_token(emulator.base)
    existing = create_list(emulator.base, access, "MSADS__Taken")
    cases = {
        "bad-action": {"Id": existing, "Action Type": "Upsert", "Accept Customer Match Term": "True"},
        "no-action": {"Id": existing, "Action Type": "", "Accept Customer Match Term": "True"},
        "unknown": {"Id": "999", "Action Type": "Add", "Accept Customer Match Term": "True"},
        "long-name": {"Id": "-2", "Audience": "x" * 129, "Scope": "Customer", "Accept Customer Match Term": "True"},
        "duplicate": {"Id": "-3", "Audience": "MSADS__Taken", "Scope": "Customer",
                      "Accept Customer Match Term": "True"},
        "bad-scope": {"Id": "-4", "Audience": "MSADS__Scope", "Scope": "Galaxy", "Accept Customer Match Term": "True"},
        "account-scope": {"Id": "-5", "Audience": "MSADS__Account", "Scope": "Account",
                          "Accept Customer Match Term": "True"},
    }
    rows = [{"Type": "Customer List", "Client Id": client_id, **fields} for client_id, fields in cases.items()]
    _, records = run_file(emulator.base, access, zip_csv(write_csv(rows)))
    assert errors_by_client_id(records) == {"bad-action": "8001", "no-action": "8001", "unknown": "8000",
                                            "long-name": "4911", "duplicate": "4917", "bad-scope": "4916",
                                            "account-scope": "4916"}
    assert [item["name"] for item in emulator.state()["lists"]] == ["MSADS__Taken"]


def test_terms_rejected_with_false_fail_with_8003_even_when_accepted_in_the_ui(emulator):
    access = access_token(emulator.base)
    answer, records = run_file(emulator.base, access,
                               build_upload(ListRow("-1", "MSADS__Terms", accept_terms=False), [sha("a@b.c")]))
    assert answer["RequestStatus"] == "CompletedWithErrors"
    assert errors_by_client_id(records) == {"list": "8003", "i0": "8000"}
    assert emulator.state()["lists"] == []


def test_empty_terms_use_the_terms_accepted_in_the_ui(emulator):
    access = access_token(emulator.base)
    upload_bytes = build_upload(ListRow("-1", "MSADS__UI"), [])
    assert build_rows(ListRow("-1", "MSADS__UI"), [])[0]["Accept Customer Match Term"] == ""
    answer, records = run_file(emulator.base, access, upload_bytes)
    assert answer["RequestStatus"] == "Completed" and int(records[0]["Id"]) > 0


def test_terms_never_accepted_in_the_ui_need_true_once(start_emulator):
    emulator = start_emulator(env={"MSADS_EMULATOR_TERMS_ACCEPTED": "false"})
    access = access_token(emulator.base)
    answer, records = run_file(emulator.base, access, build_upload(ListRow("-1", "MSADS__Terms"), [sha("a@b.c")]))
    assert errors_by_client_id(records) == {"list": "8003", "i0": "8000"}
    # Once accepted in a file, later files need not say it again (as after accepting in the UI).
    create_list(emulator.base, access, "MSADS__Accepted")
    answer, _ = run_file(emulator.base, access, build_upload(ListRow("-1", "MSADS__Later"), []))
    assert answer["RequestStatus"] == "Completed"


# ---- list semantics ------------------------------------------------------------------------

def test_add_remove_replace_change_membership(emulator):
    access = access_token(emulator.base)
    list_id = create_list(emulator.base, access)
    a, b, c = (m.email_sha256 for m in members(3))
    run_file(emulator.base, access, build_upload(ListRow(list_id, action_type="Add", accept_terms=True), [a, b]))
    assert emulator.members_of(list_id) == {a, b}
    run_file(emulator.base, access, build_upload(ListRow(list_id, action_type="Remove", accept_terms=True), [a]))
    assert emulator.members_of(list_id) == {b}
    run_file(emulator.base, access, build_upload(ListRow(list_id, action_type="Replace", accept_terms=True), [c]))
    assert emulator.members_of(list_id) == {c}


def test_new_list_and_items_in_one_file_through_a_negative_reference(emulator):
    access = access_token(emulator.base)
    hashes = [m.email_sha256 for m in members(2)]
    answer, records = run_file(emulator.base, access,
                               build_upload(ListRow("-7", "MSADS__OneShot", accept_terms=True), hashes))
    assert answer["RequestStatus"] == "Completed"
    list_id = records[0]["Id"]
    assert int(list_id) > 0 and {r["Parent Id"] for r in records[1:]} == {list_id}
    assert emulator.members_of(list_id) == set(hashes)


# ---- faults, stats, persistence ------------------------------------------------------------

def test_injected_throttling_uses_the_documented_codes(start_emulator):
    emulator = start_emulator(env={"MSADS_EMULATOR_FAULTS": "4204,117"}, fail_rate=1.0, seed=7)
    access = access_token(emulator.base)          # the token endpoint is not throttled
    seen = set()
    for _ in range(12):
        response = HTTP.post(emulator.base + "/Bulk/v13/BulkUploadUrl/Query", headers=headers(access),
                              json={"AccountId": "2000"})
        assert response.status_code == 400
        seen.update(fault_codes(response))
    assert seen == {4204, 117}
    assert emulator.stats()["requests"]["BulkUploadUrl"] == {"400": 12}


def test_injected_server_errors(start_emulator):
    emulator = start_emulator(env={"MSADS_EMULATOR_FAULTS": "503"}, fail_rate=1.0)
    access = access_token(emulator.base)
    response = HTTP.post(emulator.base + "/Bulk/v13/BulkUploadUrl/Query", headers=headers(access),
                          json={"AccountId": "2000"})
    assert response.status_code == 503


def test_rate_limit_answers_117(start_emulator):
    emulator = start_emulator(rate_limit=2)
    access = access_token(emulator.base)
    codes = []
    for _ in range(5):
        response = HTTP.post(emulator.base + "/Bulk/v13/BulkUploadUrl/Query", headers=headers(access),
                              json={"AccountId": "2000"})
        codes.append(fault_codes(response)[0] if response.status_code != 200 else 200)
    assert codes[:2] == [200, 200] and 117 in codes[2:]


def test_state_file_keeps_lists_and_tokens_across_restarts(start_emulator, tmp_path):
    state_file = tmp_path / "msads-state.json"
    first = start_emulator(state_file=state_file)
    answer = grant(first.base).json()
    access = answer["access_token"]
    list_id = create_list(first.base, access)
    hashes = [m.email_sha256 for m in members(3)]
    run_file(first.base, access, build_upload(ListRow(list_id, accept_terms=True), hashes))
    second = start_emulator(state_file=state_file)
    assert second.members_of(list_id) == set(hashes)
    assert grant(second.base, answer["refresh_token"]).status_code == 200


# ---- Campaign Management: GetAudiencesByIds -----------------------------------------------

AUDIENCES = "/CampaignManagement/v13/Audiences/QueryByIds"


def query_audiences(base: str, access: str, body: dict, **header_override: str) -> httpx.Response:
    return HTTP.post(base + AUDIENCES, headers=headers(access, **header_override), json=body)


@pytest.mark.parametrize("override, code", [
    ({"Authorization": "Bearer not-a-token"}, 105),
    ({"Authorization": ""}, 105),
    ({"DeveloperToken": "wrong"}, 105),
    ({"CustomerId": "999"}, 106),
    ({"CustomerAccountId": ""}, 106),
    ({"CustomerAccountId": "3000"}, 106),
])
def test_audience_lookup_needs_the_four_headers(emulator, override, code):
    access = access_token(emulator.base)
    create_list(emulator.base, access)
    response = query_audiences(emulator.base, access, {"AudienceIds": None, "Type": "CustomerList"}, **override)
    assert response.status_code in (400, 401)
    assert fault_codes(response) == [code]
    assert "Audiences" not in response.json()


def test_audience_lookup_answers_109_for_an_expired_token(start_emulator):
    emulator = start_emulator(env={"MSADS_EMULATOR_TOKEN_TTL": "0"})
    response = query_audiences(emulator.base, access_token(emulator.base), {"Type": "CustomerList"})
    assert response.status_code == 401 and fault_codes(response) == [109]


def test_audience_lookup_returns_every_customer_list(emulator):
    access = access_token(emulator.base)
    first = create_list(emulator.base, access, "MSADS__One")
    second = create_list(emulator.base, access, "MSADS__Two")
    for body in ({"AudienceIds": None, "Type": "CustomerList"}, {"Type": "CustomerList"},
                 {"AudienceIds": [], "Type": "RemarketingList CustomerList"}):
        response = query_audiences(emulator.base, access, body)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["PartialErrors"] == []
        assert [(a["Id"], a["Name"], a["Type"], a["Scope"]) for a in answer["Audiences"]] == [
            (first, "MSADS__One", "CustomerList", "Customer"), (second, "MSADS__Two", "CustomerList", "Customer")]
    other_type = query_audiences(emulator.base, access, {"AudienceIds": None, "Type": "RemarketingList"}).json()
    assert other_type == {"Audiences": [], "PartialErrors": []}


def test_audience_lookup_by_ids_answers_in_order_with_partial_errors(emulator):
    access = access_token(emulator.base)
    known = create_list(emulator.base, access)
    answer = query_audiences(emulator.base, access, {"AudienceIds": ["123", int(known)],
                                                     "Type": "CustomerList"}).json()
    assert answer["Audiences"][0] is None and answer["Audiences"][1]["Id"] == known
    assert [(e["Index"], e["ErrorCode"]) for e in answer["PartialErrors"]] == [(0, "InvalidAudienceId")]


@pytest.mark.parametrize("body", [{"AudienceIds": None}, {"Type": "Galaxy"},
                                  {"AudienceIds": "1", "Type": "CustomerList"},
                                  {"AudienceIds": list(range(1, 102)), "Type": "CustomerList"}])
def test_audience_lookup_refuses_a_malformed_request(emulator, body):
    response = query_audiences(emulator.base, access_token(emulator.base), body)
    assert response.status_code == 400 and fault_codes(response) == [100]


def test_audience_lookup_is_throttled_like_the_bulk_calls(start_emulator):
    emulator = start_emulator(env={"MSADS_EMULATOR_FAULTS": "117"}, fail_rate=1.0)
    response = query_audiences(emulator.base, access_token(emulator.base), {"Type": "CustomerList"})
    assert response.status_code == 400 and fault_codes(response) == [117]
    assert emulator.stats()["requests"]["AudiencesQueryByIds"] == {"400": 1}


# ---- environments and file limits ----------------------------------------------------------

def test_sandbox_token_endpoint_wants_a_sandbox_scope(start_emulator):
    emulator = start_emulator(env={"MSADS_EMULATOR_ENVIRONMENT": "sandbox"})
    assert grant(emulator.base).json()["error"] == "invalid_scope"          # the production scope
    for scope in ("https://si.ads.microsoft.com/msads.manage offline_access",
                  "https://api.ads.microsoft.com/msads.manage offline_access"):
        assert "access_token" in grant(emulator.base, scope=scope).json()
        emulator = start_emulator(env={"MSADS_EMULATOR_ENVIRONMENT": "sandbox"})  # (tokens rotate)


def test_sandbox_files_hold_at_most_20000_records(start_emulator):
    emulator = start_emulator(env={"MSADS_EMULATOR_ENVIRONMENT": "sandbox"})
    access = grant(emulator.base, scope="https://si.ads.microsoft.com/msads.manage offline_access").json()["access_token"]
    hashes = [sha(f"u{i}@x.io") for i in range(19_999)]
    answer, _ = run_file(emulator.base, access, build_upload(ListRow("-1", "MSADS__Big"), hashes))
    assert answer["RequestStatus"] == "UploadFileRowCountExceeded"
    answer, _ = run_file(emulator.base, access, build_upload(ListRow("-1", "MSADS__Fits"), hashes[:19_998]))
    assert answer["RequestStatus"] == "Completed"


def test_file_over_the_byte_limit_fails(start_emulator):
    emulator = start_emulator(env={"MSADS_EMULATOR_MAX_FILE_BYTES": "3000"})
    access = access_token(emulator.base)
    answer, _ = run_file(emulator.base, access, build_upload(ListRow("-1", "MSADS__Bytes"), [m.email_sha256 for m in members(40)]))
    assert answer["RequestStatus"] == "Failed" and answer["Errors"][0]["ErrorCode"] == "BulkServiceFileTooLarge"
