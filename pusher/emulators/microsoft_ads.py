"""Local emulator of Microsoft Advertising's OAuth token endpoint, Bulk API and the Campaign
Management calls the pusher uses (Customer Match).

Sources (each rule below names the one it comes from): learn.microsoft.com/en-us/advertising/
bulk-service/customer-list and .../bulk-service/customer-list-item (the records, terms,
membership duration, scope, audience sizes), .../bulk-service/getbulkuploadurl and
.../getbulkuploadstatus, .../guides/bulk-upload (the upload step, its headers, limits),
.../guides/operation-error-codes, .../campaign-management-service/applycustomerlistuserdata and
.../getaudiencesbyids, .../guides/authentication-oauth; the bingads Python SDK
(BingAds/BingAds-Python-SDK: bingads/authorization.py, bingads/service_client.py,
bingads/v13/bulk/bulk_service_manager.py, bingads/v13/internal/bulk/string_table.py,
openapi_client/models/campaign/*.py). Where they leave a detail open the emulator takes the
stricter reading and says so. It enforces the contract in contracts/microsoft-ads.md:

- `POST /common/oauth2/v2.0/token`: form-encoded, grant_type=refresh_token, the client id,
  a scope containing https://ads.microsoft.com/msads.manage (MSADS_EMULATOR_ENVIRONMENT=
  sandbox: https://si.ads.microsoft.com/msads.manage or https://api.ads.microsoft.com/
  msads.manage, the SDK's two sandbox scopes in authorization.py). Refresh tokens ROTATE and the
  old one is revoked at once (stricter than Microsoft, so a client that forgets to persist
  the new token fails here rather than in production); `invalid_grant` otherwise. Access
  tokens live MSADS_EMULATOR_TOKEN_TTL seconds (default 3600); an expired one answers 109.
- Bulk JSON calls (`/Bulk/v13/BulkUploadUrl/Query`, `/Bulk/v13/BulkUploadStatus/Query`) need
  `Authorization: Bearer`, `DeveloperToken`, `CustomerId`, `CustomerAccountId`, and the body's
  AccountId must equal CustomerAccountId. Faults use the REST shape: AdApiFaultDetail
  `{"Errors": [{"Code", "ErrorCode", "Message", "Detail"}]}` for auth (HTTP 401) and
  ApiFaultDetail `{"BatchErrors": [], "OperationErrors": [{"Code", "ErrorCode", "Message",
  "Details"}]}` for the rest (HTTP 400).
- Upload URLs (GetBulkUploadUrl) are single use (3224) and expire (3226,
  MSADS_EMULATOR_UPLOAD_URL_TTL, 900 s: the documented 15 minutes).
- Concurrent uploads: a customer may run 5-6 bulk uploads at once (learn.microsoft.com/en-us/
  advertising/guides/bulk-download-upload, and contracts/microsoft-ads.md). The emulator takes
  the lower figure (MSADS_EMULATOR_MAX_CONCURRENT_UPLOADS, default 5) and counts an upload as
  running from its file's arrival until a status poll has answered its final status (or
  MSADS_EMULATOR_UPLOAD_SLOT_SECONDS, default 900, have passed: a client that never polls still
  frees its slot). The docs do not say how the next upload is refused: the emulator answers the
  file upload with 3227 (too many requests), the URL stays unused, and the client must back off
  and ask for a new one, the strict reading (a refusal at GetBulkUploadUrl would cost less).
  The upload step answers failures with a flat JSON body, `{"TrackingId", "Code",
  "ErrorCode", "Message"}`, not the envelope (bulk upload guide, "Upload the file"); the
  ErrorCode names are the emulator's own, the codes are Microsoft's (operation error codes:
  3224 used, 3226 expired, 3227 too many requests). Test knob: `POST /_emulator/upload-faults
  {"codes": [...]}` makes the next uploads answer those codes (HTTP 400). The POST is
  multipart with field `file` (bulk_service_manager.py), a ZIP of one UTF-8-with-BOM CSV,
  Format Version 6.0 row (string_table.py), at most MSADS_EMULATOR_MAX_ROWS records (default 4,000,000; sandbox 20,000) and
  MSADS_EMULATOR_MAX_FILE_BYTES (100,000,000, the documented 100 MB, applied to both the ZIP
  and the CSV in it; the status is Failed with code 0 BulkServiceFileTooLarge, the emulator's
  own code).
- Rows are validated into a result file (a ZIP, record rows followed by `<Type> Error` rows):
  Customer List Item without its parent list row in the file / unknown list (8000), sub type
  (8002), Text not 64 lowercase hex, e.g. a raw email (8004), empty Text (8006), action type
  (8001), terms (8003): `Accept Customer Match Term` False = the terms explicitly rejected,
  the record fails; empty = the terms the account accepted in the UI apply (the account's
  UI acceptance is MSADS_EMULATOR_TERMS_ACCEPTED, default true; false = never accepted, so
  only True passes, and is remembered); True = accepted (Customer List record:
  https://learn.microsoft.com/en-us/advertising/bulk-service/customer-list, field
  "Accept Customer Match Term"), audience name missing or over 128 characters, duplicate
  audience name (DuplicateAudienceName), Scope other than Customer on create (4916: the
  Customer List record's Scope allows only Customer; the code name is the emulator's own).
- Campaign Management `POST /CampaignManagement/v13/Audiences/QueryByIds` (GetAudiencesByIds,
  REST): same four headers (no AccountId in the body, so only CustomerAccountId is checked
  against the user's account); `Type` is required (a space- or comma-separated string of
  audience types, or a list); `AudienceIds` null/absent/empty = every audience of those
  types, else at most 100 ids answered in order, an unknown one as null plus a PartialErrors
  BatchError with its Index (code 0 / InvalidAudienceId: the emulator's own, not verified).
  `SearchSize` and `AudienceNetworkSize` (strings, as REST carries longs) count the members
  held at least MSADS_EMULATOR_SIZE_DELAY_HOURS (48) on the membership clock, null while the
  list is younger than that (Customer List record docs: check the Audience Size fields about
  48 hours after an upload).
  Answers `{"Audiences": [{"Id": "<string>", "Name", "Type": "CustomerList", "Scope",
  "MembershipDuration", "ParentId", ...}], "PartialErrors": []}`; only Customer Lists exist
  here. Served on the same base URL as the Bulk API, with the same faults and rate limit.
- Membership expiry: a list's `Membership Duration` (days 1-390, -1 = never, empty on
  create = 30; Customer List record docs) counts from each member's last add; a re-add (Add
  or Replace of a member already there) starts it again. Members drop out once it has passed,
  on a membership clock that tests move with `POST /_emulator/clock {"days": n}` (state
  shows `clock_offset_days`).
- Campaign Management `POST /CampaignManagement/v13/CustomerListUserData/Apply`
  (ApplyCustomerListUserData; shapes from the bingads SDK's openapi_client models
  customer_list_user_data.py, apply_customer_list_user_data_response.py, batch_error.py):
  the same Bearer, DeveloperToken, CustomerId and CustomerAccountId checks as every JSON call;
  operation errors for the call as a whole: no CustomerListUserData (100), an AudienceId that
  is not an existing list (8000), ActionType not Add/Remove/Replace (8001), sub type other
  than Email (8002), AcceptCustomerMatchTerm false, or absent without the UI acceptance
  (8003), no items (8006), more than 1,000 items (code 0: the emulator's own);
  per item, the same rules as a bulk Customer List Item row (8006 empty, 8004 not 64
  lowercase hex, the row-fault knob) answered as PartialErrors with the item's Index, the
  other items applied at once (Replace: the list becomes the valid items). Same rate limit
  and injected faults as the bulk calls.
- Status (GetBulkUploadStatus RequestStatus values): PendingFileUpload while a request id's
  file has not arrived, then, over successive polls after the upload, PendingFileUpload ->
  FileUploaded -> InProgress -> Completed/CompletedWithErrors (the first poll still pending,
  as a slow upload registration would be); list state changes when the file is accepted.
- The file upload takes the token as `Authorization: Bearer` or `AuthenticationToken` (the
  bulk upload guide's header; the SDK's BulkServiceManager sends Bearer); at least one
  of them must be a valid, unexpired token.
- Faults: options.fail_rate of bulk calls answer one of MSADS_EMULATOR_FAULTS (default
  "4204,117,503"), seeded by options.seed; options.rate_limit per second, above which calls
  answer 117 (Microsoft throttles with error codes, not HTTP 429); options.latency_ms.
- `GET /_emulator/state` -> {lists: [{id, name, scope, members: [hashes]}]} (to seed lists,
  e.g. two with one name, which the API itself refuses, write options.state_file first);
  `GET /_emulator/stats` -> {requests: {endpoint: {status: count}}, uploads, rows}.
- Test knobs: `GET /_emulator/uploads` returns the last 50 uploaded files as sent (base64
  ZIPs), so tests can read them with the bingads SDK's BulkFileReader;
  `POST /_emulator/expire-tokens` expires every access token at once;
  MSADS_EMULATOR_ROW_FAULT_TEXTS (comma-separated hashes) makes those item rows fail with
  error 0 (InternalError), to exercise per-row error reporting.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import secrets
import time
from collections import defaultdict
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pusher.destinations.msads_bulk_file import (
    ACTION_TYPES, FORMAT_TYPE, HASH_RE, ITEM_TYPE, LIST_TYPE, MAX_AUDIENCE_NAME, MAX_FILE_BYTES, MAX_FILE_ROWS,
    SANDBOX_FILE_ROWS,
    RESULT_EXTRA, SCOPES, BulkFileError, read_csv, unzip_single_csv, write_csv, zip_csv,
)
from pusher.emulators.options import EmulatorOptions

MSADS_SCOPE = "https://ads.microsoft.com/msads.manage"
SANDBOX_SCOPES = {"https://si.ads.microsoft.com/msads.manage", "https://api.ads.microsoft.com/msads.manage"}
BULK = "/Bulk/v13"
CAMPAIGN = "/CampaignManagement/v13"
AUDIENCE_TYPES = {"RemarketingList", "Custom", "InMarket", "Product", "SimilarRemarketingList",
                  "CombinedList", "CustomerList", "ImpressionBasedRemarketingList"}
MAX_AUDIENCE_IDS = 100
APPLY_MAX_ITEMS = 1000
KEPT_UPLOADS = 50
TOO_MANY_UPLOADS = 3227               # the upload step's "too many requests" (refused 6th concurrent upload)
AUTH_CODES = {105: "InvalidCredentials", 106: "UserIsNotAuthorized", 109: "AuthenticationTokenExpired"}
OPERATION_CODES = {
    117: "CallRateExceeded", 1102: "InvalidAccountId", 3224: "BulkServiceUploadUrlAlreadyUsed",
    3226: "BulkServiceUploadUrlExpired", 3227: "BulkServiceTooManyRequests", 3222: "BulkServiceInvalidRequestId", 3214: "BulkServiceNoFileUploaded",
    4204: "BulkServiceNoMoreCallsPermittedForTheTimePeriod", 100: "NullRequest",
}
ROW_ERRORS = {
    8000: "CustomerListIdInvalid", 8001: "CustomerListActionTypeInvalid", 8002: "CustomerListItemSubTypeNotSupported",
    8003: "CustomerListTermsNotAccepted", 8004: "CustomerListEmailMustBeHashed", 8006: "CustomerListItemEmailRequired",
    4917: "DuplicateAudienceName", 4911: "AudienceNameInvalid", 4916: "AudienceScopeInvalid",
    4935: "MembershipDurationInvalid", 1043: "RecordTypeInvalid", 0: "InternalError",
}
STATUS_STEPS = ("PendingFileUpload", "FileUploaded", "InProgress")
DAY = 86400.0
DEFAULT_MEMBERSHIP_DAYS = 30     # an empty Membership Duration on create
MAX_MEMBERSHIP_DAYS = 390


def _env(name: str, default: str) -> str:
    return os.environ.get(name, "").strip() or default


class Fault(Exception):
    def __init__(self, code: int, message: str, http_status: int | None = None):
        super().__init__(message)
        self.code, self.message = code, message
        self.http_status = http_status or (401 if code in (105, 109) else 400)

    def response(self, flat: bool = False) -> JSONResponse:
        tracking = secrets.token_hex(8)
        if flat:
            # The file upload step's own shape: the error itself, not the operation-error envelope.
            name = AUTH_CODES.get(self.code) or OPERATION_CODES.get(self.code, "Error")
            return JSONResponse({"TrackingId": tracking, "Code": self.code, "ErrorCode": name,
                                 "Message": self.message}, status_code=self.http_status)
        if self.code in AUTH_CODES:
            body = {"TrackingId": tracking, "Type": "AdApiFaultDetail", "Errors": [
                {"Code": self.code, "Detail": None, "ErrorCode": AUTH_CODES[self.code],
                 "Message": self.message, "Type": "AdApiError"}]}
        else:
            body = {"TrackingId": tracking, "Type": "ApiFaultDetail", "BatchErrors": [], "OperationErrors": [
                {"Code": self.code, "Details": None,
                 "ErrorCode": OPERATION_CODES.get(self.code) or ROW_ERRORS.get(self.code, "Error"),
                 "Message": self.message, "Type": "OperationError"}]}
        return JSONResponse(body, status_code=self.http_status)


class MicrosoftAdsEmulator:
    def __init__(self, options: EmulatorOptions):
        self.options = options
        self.client_id = _env("MSADS_EMULATOR_CLIENT_ID", "demo-client")
        self.developer_token = _env("MSADS_EMULATOR_DEVELOPER_TOKEN", "demo-developer-token")
        self.customer_id = _env("MSADS_EMULATOR_CUSTOMER_ID", "1000")
        self.account_id = _env("MSADS_EMULATOR_ACCOUNT_ID", "2000")
        self.token_ttl = float(_env("MSADS_EMULATOR_TOKEN_TTL", "3600"))
        self.url_ttl = float(_env("MSADS_EMULATOR_UPLOAD_URL_TTL", "900"))
        self.max_concurrent_uploads = int(_env("MSADS_EMULATOR_MAX_CONCURRENT_UPLOADS", "5"))
        self.upload_slot_seconds = float(_env("MSADS_EMULATOR_UPLOAD_SLOT_SECONDS", "900"))
        self.environment = _env("MSADS_EMULATOR_ENVIRONMENT", "production")
        self.scopes = SANDBOX_SCOPES if self.environment == "sandbox" else {MSADS_SCOPE}
        self.max_rows = int(_env("MSADS_EMULATOR_MAX_ROWS",
                                 str(SANDBOX_FILE_ROWS if self.environment == "sandbox" else MAX_FILE_ROWS)))
        self.max_file_bytes = int(_env("MSADS_EMULATOR_MAX_FILE_BYTES", str(MAX_FILE_BYTES)))
        self.size_delay = float(_env("MSADS_EMULATOR_SIZE_DELAY_HOURS", "48")) * 3600
        # Rows whose Text is listed here fail with error 0 (InternalError): a per-row fault knob.
        self.row_fault_texts = {x.strip() for x in _env("MSADS_EMULATOR_ROW_FAULT_TEXTS", "").split(",") if x.strip()}
        self.fault_kinds = [int(x) for x in _env("MSADS_EMULATOR_FAULTS", "4204,117,503").split(",") if x.strip()]
        self.rng = random.Random(options.seed)
        # Durable state (saved to options.state_file when given).
        self.lists: dict[str, dict] = {}
        self.next_list_id = 700000001
        self.clock_offset = 0.0            # seconds the membership clock runs ahead (POST /_emulator/clock)
        self.terms_accepted = _env("MSADS_EMULATOR_TERMS_ACCEPTED", "true").lower() in ("1", "true", "yes")
        self.refresh_tokens = {_env("MSADS_EMULATOR_REFRESH_TOKEN", "demo-refresh-token")}
        # Volatile state.
        self.access_tokens: dict[str, float] = {}
        self.upload_urls: dict[str, dict] = {}
        self.uploaded: list[bytes] = []         # the last files received, as sent (GET /_emulator/uploads)
        self.upload_faults: list[int] = []      # codes the next file uploads answer (POST /_emulator/upload-faults)
        self.requests: dict[str, dict] = {}
        self.results: dict[str, bytes] = {}
        self.stats: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.counters: dict = {"uploads": 0, "rows": 0, "upload_auth_headers": {}, "applied_items": 0}
        self.window_start = time.monotonic()
        self.window_count = 0
        self._load()

    # ---- persistence ---------------------------------------------------------------------

    def _load(self) -> None:
        path = self.options.state_file
        if not path or not Path(path).exists():
            return
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        self.clock_offset = float(data.get("clock_offset_seconds", 0.0))
        now = self.now()
        self.lists = {k: {**v, "members": _members_with_times(v["members"], now)}
                      for k, v in data.get("lists", {}).items()}
        self.next_list_id = data.get("next_list_id", self.next_list_id)
        self.terms_accepted = data.get("terms_accepted", self.terms_accepted)
        self.refresh_tokens = set(data.get("refresh_tokens", [])) or self.refresh_tokens

    def _save(self) -> None:
        path = self.options.state_file
        if not path:
            return
        data = {"lists": {k: {**v, "members": dict(sorted(v["members"].items()))} for k, v in self.lists.items()},
                "next_list_id": self.next_list_id, "terms_accepted": self.terms_accepted,
                "refresh_tokens": sorted(self.refresh_tokens), "clock_offset_seconds": self.clock_offset}
        path = Path(path)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, path)

    # ---- the membership clock --------------------------------------------------------------

    def now(self) -> float:
        """The clock memberships age by: wall time plus what the tests advanced it by."""
        return time.time() + self.clock_offset

    def expire_members(self) -> None:
        """Drop members added (or last re-added) `membership_duration` days ago or earlier."""
        now = self.now()
        changed = False
        for item in self.lists.values():
            days = item["membership_duration"]
            if days == -1:
                continue
            expired = [h for h, added in item["members"].items() if added + days * DAY <= now]
            for member in expired:
                del item["members"][member]
            changed = changed or bool(expired)
        if changed:
            self._save()

    # ---- cross-cutting: stats, latency, rate limit, injected faults ---------------------

    async def handle(self, request: Request, endpoint: str, handler, throttled: bool) -> Response:
        if self.options.latency_ms:
            await asyncio.sleep(self.options.latency_ms / 1000)
        try:
            self.expire_members()
            if throttled:
                self._throttle()
            response = await handler(request)
        except Fault as fault:
            response = fault.response(flat=endpoint == "FileUpload")
        self.stats[endpoint][str(response.status_code)] += 1
        return response

    def _throttle(self) -> None:
        if self.options.rate_limit > 0:
            now = time.monotonic()
            if now - self.window_start >= 1.0:
                self.window_start, self.window_count = now, 0
            self.window_count += 1
            if self.window_count > self.options.rate_limit:
                raise Fault(117, "You have exceeded the number of calls that you are allowed to make in a minute.")
        if self.options.fail_rate > 0 and self.fault_kinds and self.rng.random() < self.options.fail_rate:
            kind = self.rng.choice(self.fault_kinds)
            if kind == 4204:
                raise Fault(4204, "No more bulk upload calls are permitted for the time period; retry later.")
            if kind == 117:
                raise Fault(117, "You have exceeded the number of calls that you are allowed to make in a minute.")
            raise Fault(kind, "Injected server error", http_status=kind if kind >= 500 else 503)

    # ---- OAuth ---------------------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return _oauth_error("invalid_request", "The request body must be form-encoded (AADSTS900144).")
        form = await request.form()
        if form.get("grant_type") != "refresh_token":
            return _oauth_error("unsupported_grant_type", "Only grant_type=refresh_token is supported here.")
        if form.get("client_id") != self.client_id:
            return _oauth_error("unauthorized_client", "Unknown client_id (AADSTS700016).", 400)
        if not self.scopes & set(str(form.get("scope", "")).split()):
            wanted = " or ".join(sorted(self.scopes))
            return _oauth_error("invalid_scope", f"The scope must include {wanted} (AADSTS70011).")
        token = str(form.get("refresh_token", ""))
        if token not in self.refresh_tokens:
            return _oauth_error("invalid_grant", "The refresh token is invalid, expired or revoked (AADSTS70000).")
        # Rotation: the used token is revoked, its successor is the only valid one.
        self.refresh_tokens.discard(token)
        new_refresh = "rt-" + secrets.token_urlsafe(24)
        self.refresh_tokens.add(new_refresh)
        access = "at-" + secrets.token_urlsafe(24)
        self.access_tokens[access] = time.time() + self.token_ttl
        self._save()
        return JSONResponse({"token_type": "Bearer", "scope": "https://ads.microsoft.com/msads.manage",
                             "expires_in": int(self.token_ttl), "ext_expires_in": int(self.token_ttl),
                             "access_token": access, "refresh_token": new_refresh})

    # ---- header checks -------------------------------------------------------------------

    def _check_auth(self, request: Request, token_header: bool = False) -> None:
        """The JSON calls need `Authorization: Bearer`; the file upload (token_header) takes it or
        an `AuthenticationToken` header, and at least one of those given must be a valid token."""
        auth = request.headers.get("authorization", "")
        tokens = [auth[len("Bearer "):]] if auth.startswith("Bearer ") else []
        if token_header and request.headers.get("authenticationtoken"):
            tokens.append(request.headers["authenticationtoken"])
        if not tokens:
            where = "an Authorization: Bearer or AuthenticationToken header" if token_header else \
                "the Authorization header must carry a Bearer token"
            raise Fault(105, f"Authentication failed: {where}.")
        expiries = [self.access_tokens[token] for token in tokens if token in self.access_tokens]
        if not expiries:
            raise Fault(105, "Authentication failed: unknown access token.")
        if time.time() >= max(expiries):
            raise Fault(109, "The OAuth access token has expired; refresh it and retry.")
        if request.headers.get("developertoken") != self.developer_token:
            raise Fault(105, "Authentication failed: invalid DeveloperToken header.")
        if request.headers.get("customerid") != self.customer_id:
            raise Fault(106, "The user is not authorized for this CustomerId.")

    def _check_account(self, header_value: str | None, body_value) -> None:
        if not header_value:
            raise Fault(106, "The CustomerAccountId header is required.")
        if body_value is not None and str(body_value) != header_value:
            raise Fault(1102, "CustomerAccountId header must equal the AccountId in the request.")
        if header_value != self.account_id:
            raise Fault(106, "The user is not authorized for this account.")

    async def _json_body(self, request: Request) -> dict:
        try:
            body = await request.json()
        except ValueError:
            raise Fault(100, "The request body must be JSON.") from None
        if not isinstance(body, dict):
            raise Fault(100, "The request body must be a JSON object.")
        return body

    # ---- Bulk ----------------------------------------------------------------------------

    async def upload_url(self, request: Request) -> Response:
        self._check_auth(request)
        body = await self._json_body(request)
        if body.get("AccountId") in (None, ""):
            raise Fault(1102, "AccountId is required.")
        self._check_account(request.headers.get("customeraccountid"), body.get("AccountId"))
        mode = body.get("ResponseMode", "ErrorsOnly")
        if mode not in ("ErrorsOnly", "ErrorsAndResults"):
            raise Fault(100, "ResponseMode must be ErrorsOnly or ErrorsAndResults.")
        token = secrets.token_urlsafe(18)
        request_id = secrets.token_hex(12)
        self.upload_urls[token] = {"request_id": request_id, "expires": time.time() + self.url_ttl,
                                   "used": False, "mode": mode}
        base = str(request.base_url).rstrip("/")
        return JSONResponse({"RequestId": request_id, "UploadUrl": f"{base}{BULK}/FileUpload/{token}"})

    async def upload_file(self, request: Request) -> Response:
        slot = self.upload_urls.get(request.path_params["token"])
        if slot is None:
            raise Fault(3226, "The upload URL is not valid.", http_status=404)
        self._check_auth(request, token_header=True)
        for header in ("Authorization", "AuthenticationToken"):     # which forms clients send (stats)
            if request.headers.get(header):
                self.counters["upload_auth_headers"][header] = self.counters["upload_auth_headers"].get(header, 0) + 1
        account = request.headers.get("accountid") or request.headers.get("customeraccountid")
        self._check_account(account, None)
        if self.upload_faults:
            code = self.upload_faults.pop(0)
            raise Fault(code, OPERATION_CODES.get(code, "Injected upload fault") + " (injected)")
        if slot["used"]:
            raise Fault(3224, "The upload URL has already been used; request a new one.")
        if time.time() > slot["expires"]:
            raise Fault(3226, "The upload URL has expired; request a new one.")
        if self._uploads_running() >= self.max_concurrent_uploads:
            raise Fault(TOO_MANY_UPLOADS, f"{self.max_concurrent_uploads} bulk uploads of this customer are still "
                        "running; wait for one to finish and upload again with a new URL.")
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise Fault(3214, "No file was uploaded: send multipart/form-data with a 'file' field.")
        slot["used"] = True
        data = await upload.read()
        self.counters["uploads"] += 1
        self.uploaded = (self.uploaded + [data])[-KEPT_UPLOADS:]
        self.requests[slot["request_id"]] = self._process(data, slot["mode"])
        return JSONResponse({"TrackingId": secrets.token_hex(8), "RequestId": slot["request_id"]})

    def _uploads_running(self) -> int:
        """Files received whose final status no poll has answered yet (within the slot time)."""
        oldest = time.time() - self.upload_slot_seconds
        return sum(1 for job in self.requests.values()
                   if job["polls"] <= len(STATUS_STEPS) and job["received_at"] > oldest)

    async def upload_status(self, request: Request) -> Response:
        self._check_auth(request)
        body = await self._json_body(request)
        self._check_account(request.headers.get("customeraccountid"), None)
        request_id = str(body.get("RequestId", ""))
        job = self.requests.get(request_id)
        if job is None and any(slot["request_id"] == request_id for slot in self.upload_urls.values()):
            return JSONResponse({"Errors": None, "ForwardCompatibilityMap": None, "PercentComplete": 0,
                                 "RequestStatus": "PendingFileUpload", "ResultFileUrl": None})
        if job is None:
            raise Fault(3222, "Unknown RequestId.")
        step = job["polls"]
        job["polls"] += 1
        answer = {"Errors": None, "ForwardCompatibilityMap": None, "PercentComplete": 0,
                  "RequestStatus": "", "ResultFileUrl": None}
        if step < len(STATUS_STEPS):
            answer.update(RequestStatus=STATUS_STEPS[step], PercentComplete=step * 30)
        elif job["status"] in ("Completed", "CompletedWithErrors"):
            base = str(request.base_url).rstrip("/")
            answer.update(RequestStatus=job["status"], PercentComplete=100,
                          ResultFileUrl=f"{base}{BULK}/ResultFiles/{job['result_id']}")
        else:
            answer.update(RequestStatus=job["status"], PercentComplete=100, Errors=job["errors"])
        return JSONResponse(answer)

    async def result_file(self, request: Request) -> Response:
        data = self.results.get(request.path_params["result_id"])
        if data is None:
            return Response("The result file has expired or does not exist.", status_code=404)
        return Response(data, media_type="application/zip")

    # ---- Campaign Management: GetAudiencesByIds ------------------------------------------

    async def audiences_by_ids(self, request: Request) -> Response:
        self._check_auth(request)
        body = await self._json_body(request)
        self._check_account(request.headers.get("customeraccountid"), None)
        raw_type = body.get("Type")
        types = set(raw_type if isinstance(raw_type, list) else str(raw_type or "").replace(",", " ").split())
        if not types:
            raise Fault(100, "Type is required: one or more audience types, e.g. CustomerList.")
        if types - AUDIENCE_TYPES:
            raise Fault(100, f"Unknown audience type(s): {', '.join(sorted(map(str, types - AUDIENCE_TYPES)))}.")
        audiences = [self._audience(item) for item in self.lists.values()] if "CustomerList" in types else []
        ids = body.get("AudienceIds")
        if not ids:
            return JSONResponse({"Audiences": audiences, "PartialErrors": []})
        if not isinstance(ids, list) or len(ids) > MAX_AUDIENCE_IDS:
            raise Fault(100, f"AudienceIds must be a list of at most {MAX_AUDIENCE_IDS} ids.")
        by_id = {audience["Id"]: audience for audience in audiences}
        answered, errors = [], []
        for index, audience_id in enumerate(ids):
            found = by_id.get(str(audience_id))
            answered.append(found)
            if found is None:
                errors.append({"Code": 0, "Details": None, "ErrorCode": "InvalidAudienceId", "FieldPath": None,
                               "ForwardCompatibilityMap": None, "Index": index, "Type": "BatchError",
                               "Message": f"Audience {audience_id} does not exist or is not of the requested type."})
        return JSONResponse({"Audiences": answered, "PartialErrors": errors})

    # ---- Campaign Management: ApplyCustomerListUserData ----------------------------------

    async def apply_user_data(self, request: Request) -> Response:
        """Synchronous list change of at most 1,000 hashed items; per-item PartialErrors."""
        self._check_auth(request)
        body = await self._json_body(request)
        self._check_account(request.headers.get("customeraccountid"), None)
        data = body.get("CustomerListUserData")
        if not isinstance(data, dict):
            raise Fault(100, "CustomerListUserData is required.")
        list_id = str(data.get("AudienceId") or "")
        if list_id not in self.lists:
            raise Fault(8000, f"Customer list {list_id or '(none)'} does not exist.")
        action = data.get("ActionType")
        if action not in ACTION_TYPES:
            raise Fault(8001, f"ActionType must be one of {', '.join(ACTION_TYPES)}.")
        if data.get("CustomerListItemSubType") != "Email":
            raise Fault(8002, "CustomerListItemSubType must be Email.")
        terms = data.get("AcceptCustomerMatchTerm")
        if terms is False or (terms is None and not self.terms_accepted):
            raise Fault(8003, "The Customer Match terms are not accepted (AcceptCustomerMatchTerm or the UI).")
        if terms is True:
            self.terms_accepted = True
        items = data.get("CustomerListItems")
        if not isinstance(items, list) or not items:
            raise Fault(8006, "CustomerListItems must list at least one item.")
        if len(items) > APPLY_MAX_ITEMS:
            raise Fault(0, f"CustomerListItems holds {len(items)} items; at most {APPLY_MAX_ITEMS} per call.")
        errors, valid = [], []
        for index, text in enumerate(items):
            problem = self._item_problem(text if isinstance(text, str) else "")
            if problem:
                code, message = problem
                errors.append({"Code": code, "Details": None, "ErrorCode": ROW_ERRORS.get(code, "Error"),
                               "FieldPath": None, "ForwardCompatibilityMap": None, "Index": index,
                               "Message": message, "Type": "BatchError"})
            else:
                valid.append(text)
        members = self.lists[list_id]["members"]
        if action == "Replace":
            members.clear()
        if action == "Remove":
            for member in valid:
                members.pop(member, None)
        else:
            members.update(dict.fromkeys(valid, self.now()))
        self.counters["applied_items"] += len(valid)
        self._save()
        return JSONResponse({"PartialErrors": errors})

    def _item_problem(self, text: str) -> tuple[int, str] | None:
        """The Customer List Item rules, shared by bulk rows and Apply items."""
        if not text.strip():
            return 8006, "Text (the hashed email) is required."
        if not HASH_RE.fullmatch(text):
            return 8004, "Text must be the SHA-256 hash of the email as 64 lowercase hex characters."
        if text in self.row_fault_texts:
            return 0, "An internal error occurred while processing this record (injected)."
        return None

    def _reported_size(self, item: dict) -> str | None:
        """Members held for the size delay or longer (everyone "matches" here); null while the
        list is younger than the delay, as Microsoft reports sizes about 48 h after an upload."""
        cutoff = self.now() - self.size_delay
        if item.get("created_at", 0.0) > cutoff:
            return None
        return str(sum(1 for added in item["members"].values() if added <= cutoff))

    def _audience(self, item: dict) -> dict:
        # REST JSON carries longs as strings.
        owner = self.customer_id if item["scope"] == "Customer" else self.account_id
        size = self._reported_size(item)
        return {"AudienceNetworkSize": size, "CustomerShare": None, "Description": None,
                "ForwardCompatibilityMap": None, "Id": item["id"],
                "MembershipDuration": item["membership_duration"], "Name": item["name"], "ParentId": owner,
                "Scope": item["scope"], "SearchSize": size, "SupportedCampaignTypes": None,
                "Type": "CustomerList"}

    # ---- file processing -----------------------------------------------------------------

    def _process(self, data: bytes, mode: str) -> dict:
        job = {"polls": 0, "status": "Failed", "errors": None, "result_id": None, "received_at": time.time()}
        try:
            csv_bytes = unzip_single_csv(data)
            if len(data) > self.max_file_bytes or len(csv_bytes) > self.max_file_bytes:
                raise BulkFileError("Failed", 0, "BulkServiceFileTooLarge",
                                    f"The file is {len(csv_bytes)} bytes; the limit is {self.max_file_bytes}.")
            header, records = read_csv(csv_bytes)
        except BulkFileError as exc:
            job.update(status=exc.status, errors=[{"Code": exc.code, "Details": None, "ErrorCode": exc.error_code,
                                                   "Message": exc.message, "Type": "OperationError"}])
            return job
        if len(records) + 1 > self.max_rows:          # the Format Version row counts too (the stricter reading)
            job.update(status="UploadFileRowCountExceeded", errors=[{
                "Code": 3225, "Details": None, "ErrorCode": "BulkServiceRowCountExceeded",
                "Message": f"The file has {len(records) + 1} rows; the limit is {self.max_rows}.",
                "Type": "OperationError"}])
            return job
        self.counters["rows"] += len(records)
        out_rows, had_errors = self._apply(records, mode)
        result_id = secrets.token_urlsafe(18)
        out_header = list(header) + [c for c in RESULT_EXTRA if c not in header]
        self.results[result_id] = zip_csv(write_csv(out_rows, out_header), "result.csv")
        job.update(status="CompletedWithErrors" if had_errors else "Completed", result_id=result_id)
        self._save()
        return job

    def _apply(self, records: list[dict], mode: str) -> tuple[list[dict], bool]:
        """Validate every record, apply the valid ones, return result rows and whether any failed."""
        out: list[dict] = []
        had_errors = False
        list_rows: dict[str, dict] = {}   # Id value in the file -> {"list": id or None, "error": row error}
        pending: dict[str, dict] = {}     # list id -> {"action": str, "add": set, "remove": set}

        def emit(record: dict, errors: list[tuple[int, str]]) -> None:
            nonlocal had_errors
            if mode == "ErrorsAndResults" or errors:
                out.append(record)
            for code, message in errors:
                had_errors = True
                out.append({**record, "Type": f"{record.get('Type', '')} Error",
                            "Error": f"{ROW_ERRORS.get(code, 'Error')}: {message}", "Error Number": str(code)})

        for record in records:
            kind = record.get("Type", "")
            if kind == LIST_TYPE:
                errors, list_id = self._list_row(record, pending)
                list_rows[record.get("Id", "")] = {"list": list_id, "errors": errors}
                emit({**record, "Id": list_id or record.get("Id", "")}, errors)
            elif kind == ITEM_TYPE:
                errors = self._item_row(record, list_rows, pending)
                parent = list_rows.get(record.get("Parent Id", ""))
                emit({**record, "Parent Id": (parent or {}).get("list") or record.get("Parent Id", "")}, errors)
            elif kind == FORMAT_TYPE:
                emit(record, [(1043, "Format Version may appear only once, as the second row.")])
            else:
                emit(record, [(1043, f"Record type {kind!r} is not supported by this emulator.")])

        now = self.now()
        for list_id, change in pending.items():
            members = self.lists[list_id]["members"]
            if change["action"] == "Replace":
                members.clear()
            members.update(dict.fromkeys(change["add"], now))   # a re-add restarts the membership
            for member in change["remove"]:
                members.pop(member, None)
        return out, had_errors

    def _list_row(self, record: dict, pending: dict) -> tuple[list[tuple[int, str]], str | None]:
        row_id = record.get("Id", "").strip()
        action = record.get("Action Type", "").strip()
        terms = record.get("Accept Customer Match Term", "").strip().lower()
        if terms == "false":
            return [(8003, "The Customer Match terms were rejected (Accept Customer Match Term=False).")], None
        if terms not in ("", "true"):
            return [(8003, "Accept Customer Match Term must be True, False or empty.")], None
        if not (self.terms_accepted or terms == "true"):
            return [(8003, "Accept the Customer Match terms (Accept Customer Match Term=True or in the UI).")], None
        if action and action not in ACTION_TYPES:
            return [(8001, f"Action Type must be one of {', '.join(ACTION_TYPES)}.")], None
        if terms == "true":
            self.terms_accepted = True
        if not row_id or row_id.startswith("-"):          # create
            name = record.get("Audience", "")
            if not name.strip() or len(name) > MAX_AUDIENCE_NAME:
                return [(4911, f"Audience is required and at most {MAX_AUDIENCE_NAME} characters.")], None
            if any(existing["name"] == name for existing in self.lists.values()):
                return [(4917, f"An audience named {name!r} already exists.")], None
            scope = record.get("Scope", "").strip()
            if scope not in SCOPES:
                return [(4916, f"Scope must be one of {', '.join(SCOPES)}.")], None
            duration = record.get("Membership Duration", "").strip() or str(DEFAULT_MEMBERSHIP_DAYS)
            if not (duration.lstrip("-").isdigit() and (int(duration) == -1 or 1 <= int(duration) <= MAX_MEMBERSHIP_DAYS)):
                return [(4935, f"Membership Duration must be 1-{MAX_MEMBERSHIP_DAYS} days or -1.")], None
            list_id = str(self.next_list_id)
            self.next_list_id += 1
            self.lists[list_id] = {"id": list_id, "name": name, "scope": scope,
                                   "membership_duration": int(duration), "members": {}, "created_at": self.now()}
            pending[list_id] = {"action": "Add", "add": set(), "remove": set()}
            return [], list_id
        if row_id not in self.lists:
            return [(8000, f"Customer list {row_id} does not exist.")], None
        if not action:
            return [(8001, "Action Type is required when updating a customer list.")], None
        if record.get("Audience", "").strip():
            self.lists[row_id]["name"] = record["Audience"]
        change = pending.setdefault(row_id, {"action": action, "add": set(), "remove": set()})
        change["action"] = "Replace" if "Replace" in (action, change["action"]) else action
        change["row_action"] = action
        return [], row_id

    def _item_row(self, record: dict, list_rows: dict, pending: dict) -> list[tuple[int, str]]:
        parent = list_rows.get(record.get("Parent Id", "").strip())
        if parent is None:
            return [(8000, "A Customer List Item needs its parent Customer List row (by Parent Id) in the same file.")]
        if parent["errors"] or parent["list"] is None:
            return [(8000, "The parent Customer List row failed.")]
        if record.get("Sub Type", "").strip() != "Email":
            return [(8002, "Sub Type must be Email.")]
        text = record.get("Text", "")
        problem = self._item_problem(text)
        if problem:
            return [problem]
        change = pending[parent["list"]]
        if change.get("row_action", change["action"]) == "Remove":
            change["remove"].add(text)
            change["add"].discard(text)
        else:
            change["add"].add(text)
            change["remove"].discard(text)
        return []

    # ---- inspection ----------------------------------------------------------------------

    async def state(self, request: Request) -> Response:
        self.expire_members()
        return JSONResponse({"clock_offset_days": self.clock_offset / DAY, "lists": [
            {"id": item["id"], "name": item["name"], "scope": item["scope"],
             "membership_duration": item["membership_duration"], "members": sorted(item["members"])}
            for item in self.lists.values()], "terms_accepted": self.terms_accepted})

    async def advance_clock(self, request: Request) -> Response:
        """Test knob: `{"days": n}` moves the membership clock n days ahead (tokens and upload URLs
        keep wall time); members whose duration has passed drop out."""
        try:
            days = float((await request.json())["days"])
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": 'send {"days": <number>}'}, status_code=400)
        if days < 0:
            return JSONResponse({"error": "the clock only moves forward"}, status_code=400)
        self.clock_offset += days * DAY
        self.expire_members()
        self._save()
        return JSONResponse({"clock_offset_days": self.clock_offset / DAY})

    async def uploads(self, request: Request) -> Response:
        """Test knob: the last uploaded files (base64 ZIPs, oldest first), to check them independently."""
        return JSONResponse({"files": [base64.b64encode(data).decode("ascii") for data in self.uploaded]})

    async def queue_upload_faults(self, request: Request) -> Response:
        """Test knob: `{"codes": [3227, 4204, ...]}`: the next file uploads answer these, one each."""
        try:
            codes = [int(code) for code in (await request.json())["codes"]]
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": 'send {"codes": [<error code>, ...]}'}, status_code=400)
        self.upload_faults.extend(codes)
        return JSONResponse({"queued": len(self.upload_faults)})

    async def expire_tokens(self, request: Request) -> Response:
        """Test knob: every access token issued so far expires now (the next bulk call answers 109)."""
        for token in self.access_tokens:
            self.access_tokens[token] = 0.0
        return JSONResponse({"expired": len(self.access_tokens)})

    async def stats_view(self, request: Request) -> Response:
        return JSONResponse({"requests": {k: dict(v) for k, v in self.stats.items()}, **self.counters})


def _members_with_times(members, now: float) -> dict[str, float]:
    """State files hold {hash: added_at}; older ones a list of hashes (added now)."""
    return dict(members) if isinstance(members, dict) else dict.fromkeys(members, now)


def _oauth_error(error: str, description: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description, "error_codes": []}, status_code=status)


def create_app(options: EmulatorOptions | None = None) -> Starlette:
    emulator = MicrosoftAdsEmulator(options or EmulatorOptions())

    def route(path: str, endpoint: str, handler, methods: list[str], throttled: bool = False) -> Route:
        async def wrapped(request: Request) -> Response:
            return await emulator.handle(request, endpoint, handler, throttled)
        return Route(path, wrapped, methods=methods)

    app = Starlette(routes=[
        route("/common/oauth2/v2.0/token", "token", emulator.token, ["POST"]),
        route(f"{BULK}/BulkUploadUrl/Query", "BulkUploadUrl", emulator.upload_url, ["POST"], throttled=True),
        route(f"{BULK}/FileUpload/{{token}}", "FileUpload", emulator.upload_file, ["POST"], throttled=True),
        route(f"{BULK}/BulkUploadStatus/Query", "BulkUploadStatus", emulator.upload_status, ["POST"], throttled=True),
        route(f"{CAMPAIGN}/Audiences/QueryByIds", "AudiencesQueryByIds", emulator.audiences_by_ids, ["POST"],
              throttled=True),
        route(f"{CAMPAIGN}/CustomerListUserData/Apply", "ApplyCustomerListUserData", emulator.apply_user_data,
              ["POST"], throttled=True),
        route(f"{BULK}/ResultFiles/{{result_id}}", "ResultFile", emulator.result_file, ["GET"]),
        Route("/_emulator/state", emulator.state, methods=["GET"]),
        Route("/_emulator/stats", emulator.stats_view, methods=["GET"]),
        Route("/_emulator/expire-tokens", emulator.expire_tokens, methods=["POST"]),
        Route("/_emulator/clock", emulator.advance_clock, methods=["POST"]),
        Route("/_emulator/uploads", emulator.uploads, methods=["GET"]),
        Route("/_emulator/upload-faults", emulator.queue_upload_faults, methods=["POST"]),
    ])
    app.state.emulator = emulator
    return app
