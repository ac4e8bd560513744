"""Microsoft Advertising Customer Match lists, kept in step through the Bulk API (REST, v13)
and, for small changes, Campaign Management ApplyCustomerListUserData (msads_apply).

Sources: learn.microsoft.com/en-us/advertising/bulk-service/customer-list and
.../customer-list-item, .../bulk-service/getbulkuploadurl, .../getbulkuploadstatus,
.../guides/bulk-upload, .../guides/operation-error-codes,
.../campaign-management-service/applycustomerlistuserdata and .../getaudiencesbyids,
.../guides/authentication-oauth; the bingads Python SDK (bingads/authorization.py,
bingads/service_client.py, bingads/v13/bulk/bulk_service_manager.py, openapi_client models).

One call = one bulk upload: BulkUploadUrl/Query -> POST the ZIP to the single-use URL (with
`Authorization: Bearer` as the SDK's BulkServiceManager sends it, and `AuthenticationToken`
as the bulk upload guide does) -> poll BulkUploadStatus/Query (PendingFileUpload,
FileUploaded, InProgress: poll on) -> download the result file at once -> per-row errors. The
file holds a `Customer List` row (Action Type Add/Remove/Replace) and `Customer List Item`
rows (Sub Type Email, Text = the member's email_sha256). Every Text is checked to be 64
lowercase hex before anything is sent, so a raw email can never leave.

Errors (REST): a fault body carries `Errors` (AdApiFaultDetail: auth) or `OperationErrors`
/ `BatchErrors` (ApiFaultDetail), each with Code / ErrorCode / Message. The file upload
step (POST to UploadUrl) answers with a flat body instead, the error's Code / ErrorCode /
Message at the top level (the exact shape is not spelled out in the bulk upload guide, so
both shapes, and a list of flat errors, are read everywhere: fault_errors). 109 (token
expired) -> refresh once and retry; 4204 (no more bulk calls for now) -> wait, growing up
to MSADS_THROTTLE_MAX_WAIT_SECONDS (15 min); 117 (call rate exceeded) and 3227 (upload:
too many requests) -> wait MSADS_RATE_WAIT_SECONDS (60 s), then a new upload URL; 3224
(upload URL already used) / 3226 (expired) -> a new upload URL at once. A Retry-After header
is honoured up to MSADS_THROTTLE_MAX_WAIT_SECONDS. After MSADS_MAX_THROTTLE_RETRIES (8) of
these in a row: DestinationUnavailable (exit 6, nothing unacknowledged lost). HTTP 429/5xx/
network -> pusher.http.send_with_retries.

Finding a list again (first run, lost ledger): when ensure_list has no remembered id it
first asks the Campaign Management API for every Customer List of the account
(GetAudiencesByIds, REST: `POST <campaign>/CampaignManagement/v13/Audiences/QueryByIds`
with `{"AudienceIds": null, "Type": "CustomerList"}`; null ids = all audiences of that
type; answer `{"Audiences": [{"Id", "Name", "Type", ...}], "PartialErrors": [...]}`, ids
as JSON strings or numbers). Exactly one Customer List with exactly that name -> its id is
reused; several -> ConfigError naming them (we do not guess which is ours); none -> the
list is created by a bulk upload. The lookup uses the same headers and the same 109 /
4204 / 117 handling as the bulk calls. Audience names are unique within the customer, so
a create can still fail with DuplicateAudienceName (another run created the list since
the lookup, or an audience of another type holds the name): DestinationRequestError says so.

Settings (environment): required MSADS_DEVELOPER_TOKEN, MSADS_CLIENT_ID, MSADS_REFRESH_TOKEN,
MSADS_CUSTOMER_ID, MSADS_ACCOUNT_ID; optional:
- MSADS_ENVIRONMENT (production | sandbox): the bulk host (campaign host derived), the token
  endpoint and OAuth scope (the SDK's authorization.py: production
  https://ads.microsoft.com/msads.manage; sandbox, the SDK's default login,
  https://si.ads.microsoft.com/msads.manage on login.microsoftonline.com, or with
  MSADS_SANDBOX_LOGIN=ppe https://api.ads.microsoft.com/msads.manage on login.windows-ppe.net:
  the docs show both, so it is a setting), and the rows-per-file limit (4,000,000; sandbox
  20,000). MSADS_BULK_URL, MSADS_CAMPAIGN_URL and MSADS_TOKEN_URL override the hosts (emulator).
- MSADS_CLIENT_SECRET; MSADS_TOKEN_FILE (rotated refresh token, default
  .pusher/msads-refresh-token; a relative path is read against the dbt project directory).
  Before the first refresh the file's directory is checked by writing a temporary file in it:
  if it cannot be written, ConfigError (exit 5) before the refresh token is spent.
- MSADS_ACCEPT_TERMS: unset, the `Accept Customer Match Term` cell stays empty, which means the
  terms the account accepted in the UI; true/false are sent as given, and False makes the
  upload fail with 8003 (Customer List record docs).
- MSADS_LIST_SCOPE: only Customer (the Customer List record's Scope allows nothing else).
- MSADS_MEMBERSHIP_DURATION (days 1-390 or -1 for never; default -1: Microsoft's own default
  is 30 days, after which a member drops out unless re-added, and the pusher sends an
  unchanged member only once; set on new lists). MSADS_REFRESH_MARGIN_DAYS (7): with a
  duration set, members whose last acknowledgement in the ledger is older than duration -
  margin days (the default margin at most half the duration) are re-added in the next sync,
  the plan's `refreshes`; so sync at least once every margin days.
- MSADS_MAX_ROWS_PER_FILE (default 100,000, at most the environment's limit minus the two
  non-item rows): the documented 4,000,000 would let one file take hours to process and one
  refused or timed-out file resend millions of rows, and it is built in memory; 100,000 rows
  are about 12 MB, so big lists still go as few files. MSADS_MAX_FILE_BYTES (100,000,000: the
  documented 100 MB, read as the uncompressed CSV, the stricter reading): files are split by
  bytes as well as rows.
- MSADS_APPLY_MAX_ITEMS (1000, at most 1000; 0 = always Bulk): a batch of at most this many
  members goes as one synchronous Campaign Management ApplyCustomerListUserData call (see
  msads_apply), the documented way for small changes, instead of a bulk round trip (upload,
  poll, download) that also spends the scarcer bulk quota; bigger batches, and a Replace
  with no members, go through Bulk. Lists are always created through Bulk.
- MSADS_POLL_SECONDS (5, growing to 60), MSADS_POLL_TIMEOUT_SECONDS (3600),
  MSADS_THROTTLE_MAX_WAIT_SECONDS (900), MSADS_RATE_WAIT_SECONDS (60),
  MSADS_MAX_THROTTLE_RETRIES (8), MSADS_REQUESTS_PER_SECOND (2).
- MSADS_MAX_CONCURRENT_UPLOADS (4): see Concurrency.

Concurrency: a customer may run 5-6 bulk uploads at once (the Bulk service's limits, see
https://learn.microsoft.com/en-us/advertising/guides/bulk-download-upload?view=bingads-13).
MSADS_MAX_CONCURRENT_UPLOADS (1-5, default 4: one below the lower figure, so another tool of
the same customer can still upload) is how many batches the sync engine uploads at once. All
uploads share one rate limiter, and a 4204 or 117 seen by one of them holds them all.

MSADS_CAMPAIGN_URL unset: derived from MSADS_BULK_URL (see campaign_base_url). A Microsoft
bulk host `bulk.api[.sandbox].bingads.microsoft.com` maps to its campaign twin
`campaign.api[.sandbox].bingads.microsoft.com`; any other bulk URL (emulator, proxy) is
used as the campaign base as it is, since the emulator serves both APIs on one base URL.

Members cannot be listed back (Bulk download of list items is not supported), so
list_members returns None and a first-ever sync uses Action Type Replace; list_size is 0
only when no list of that name exists, so a Replace of a list the ledger does not know
(a lost ledger) stops at the remove_share guard unless overridden.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence
from urllib.parse import urlsplit

import httpx

from pusher.destinations.base import BatchResult, Destination, ListRef, Member, chunked
from pusher.destinations.msads_apply import MAX_ITEMS as APPLY_MAX_ITEMS
from pusher.destinations.msads_apply import OPERATION as APPLY_OPERATION
from pusher.destinations.msads_apply import apply_body, item_errors
from pusher.destinations.msads_auth import TokenProvider
from pusher.destinations.msads_bulk_file import (
    MAX_FILE_BYTES, MAX_FILE_ROWS, NEW_LIST_REF, NON_ITEM_ROWS, SANDBOX_FILE_ROWS, SCOPES, BulkFileError, ListRow,
    UploadOutcome, build_upload, check_audience_name, check_hashes, items_per_file, read_bulk_file, read_outcome,
)
from pusher.errors import (
    ConfigError, DestinationAuthError, DestinationRequestError, DestinationUnavailable, register_secret,
)
from pusher.http import RateLimiter, RetryPolicy, make_client, parse_retry_after, send_with_retries

DEFAULT_BULK_URL = "https://bulk.api.bingads.microsoft.com"
DEFAULT_TOKEN_URL = "https://login.microsoftonline.com"
DEFAULT_ROWS_PER_FILE = 100_000
DEFAULT_TOKEN_FILE = ".pusher/msads-refresh-token"


@dataclass(frozen=True)
class Environment:
    """What MSADS_ENVIRONMENT decides (hosts: the SDK's service_client.py; OAuth: its
    authorization.py _UriOAuthService; row limits: the bulk upload docs)."""

    bulk_url: str
    token_url: str
    scope: str
    max_file_rows: int


ENVIRONMENTS = {
    "production": Environment(DEFAULT_BULK_URL, "https://login.microsoftonline.com/common/oauth2/v2.0/token",
                              "https://ads.microsoft.com/msads.manage offline_access", MAX_FILE_ROWS),
    # The SDK's sandbox default (use_msa_prod=True): a Microsoft account on the production login.
    "sandbox": Environment("https://bulk.api.sandbox.bingads.microsoft.com",
                           "https://login.microsoftonline.com/common/oauth2/v2.0/token",
                           "https://si.ads.microsoft.com/msads.manage offline_access", SANDBOX_FILE_ROWS),
}
# MSADS_SANDBOX_LOGIN=ppe: the SDK's other sandbox login (use_msa_prod=False).
SANDBOX_PPE_LOGIN = ("https://login.windows-ppe.net/consumers/oauth2/v2.0/token",
                     "https://api.ads.microsoft.com/msads.manage offline_access")
BULK_PATH = "/Bulk/v13"
CAMPAIGN_PATH = "/CampaignManagement/v13"
MICROSOFT_API_DOMAIN = ".bingads.microsoft.com"
FINAL_STATUSES = {"Completed", "CompletedWithErrors"}
PENDING_STATUSES = {"PendingFileUpload", "FileUploaded", "InProgress"}   # poll on (so does an unknown one)
FAILED_STATUSES = {"Failed", "UploadFileRowCountExceeded", "UploadFileFormatNotSupported",
                   "FailedFullSyncRequired", "Expired", "Aborted"}
AUTH_EXPIRED = 109
AUTH_REFUSED = {105, 106}
NO_MORE_BULK_CALLS = 4204
CALL_RATE_EXCEEDED = 117
TOO_MANY_UPLOADS = 3227                # the upload step's "too many requests": back off, new URL
UPLOAD_URL_SPENT = {3224, 3226}        # URL already used / expired: ask for a new one
RETRIED_CODES = (AUTH_EXPIRED, NO_MORE_BULK_CALLS, CALL_RATE_EXCEEDED, TOO_MANY_UPLOADS, *sorted(UPLOAD_URL_SPENT))
NEVER_EXPIRES = -1
MAX_MEMBERSHIP_DAYS = 390
DEFAULT_REFRESH_MARGIN_DAYS = 7.0
MAX_CONCURRENT_UPLOADS = 5             # documented: 5-6 per customer; the lower figure


def _int_setting(env: Mapping[str, str], name: str, default: int | float, *, cast=int,
                 low: float | None = None, high: float | None = None):
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = cast(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if (low is not None and value < low) or (high is not None and value > high):
        raise ConfigError(f"{name}={raw!r} must be between {low} and {high}")
    return value


def fault_errors(body: object) -> list[tuple[int, str, str]]:
    """(Code, ErrorCode, Message) of every error in an error body; [] if it carries none.

    Two shapes: the operation-error envelope of the JSON calls (`Errors` / `OperationErrors` /
    `BatchErrors`, each a list of errors) and the flat body of the file upload step (the error's
    own `Code`, `ErrorCode`, `Message` at the top level, or a list of such errors)."""
    if isinstance(body, list):
        return [found for item in body for found in fault_errors(item)]
    if not isinstance(body, dict):
        return []
    errors = [error for key in ("Errors", "OperationErrors", "BatchErrors") for error in body.get(key) or []]
    if not errors and "Code" in body:
        errors = [body]                  # the flat shape
    found = []
    for error in errors:
        if isinstance(error, dict) and "Code" in error:
            try:
                code = int(error["Code"])
            except (TypeError, ValueError):
                code = 0
            found.append((code, str(error.get("ErrorCode") or ""), str(error.get("Message") or "")))
    return found


def campaign_base_url(bulk_url: str) -> str:
    """The Campaign Management base URL that goes with a bulk base URL (MSADS_CAMPAIGN_URL unset)."""
    parts = urlsplit(bulk_url.rstrip("/"))
    host = (parts.hostname or "").lower()
    if host.startswith("bulk.") and host.endswith(MICROSOFT_API_DOMAIN):
        # production or sandbox: bulk.api[.sandbox]... -> campaign.api[.sandbox]...
        return f"{parts.scheme}://campaign.{host[len('bulk.'):]}"
    return bulk_url.rstrip("/")   # emulator or proxy: one base URL for both APIs


def campaign_endpoint(base_url: str) -> str:
    """MSADS_CAMPAIGN_URL may be the host or already end with /CampaignManagement/v13."""
    base = base_url.rstrip("/")
    return base if base.endswith(CAMPAIGN_PATH) else base + CAMPAIGN_PATH


def customer_list_ids_named(audiences: object, name: str) -> list[str]:
    """Ids of the Customer Lists called exactly `name` in a GetAudiencesByIds answer."""
    found = []
    for audience in audiences or []:
        if not isinstance(audience, dict):      # the API may answer null for an entry
            continue
        if audience.get("Name") == name and audience.get("Type", "CustomerList") == "CustomerList":
            if audience.get("Id") not in (None, ""):
                found.append(str(audience["Id"]))
    return sorted(set(found))


def membership_duration_setting(env: Mapping[str, str]) -> int:
    """MSADS_MEMBERSHIP_DURATION: days 1-390, or -1 (the default) for members that never expire."""
    duration = _int_setting(env, "MSADS_MEMBERSHIP_DURATION", NEVER_EXPIRES, low=-1, high=MAX_MEMBERSHIP_DAYS)
    if duration == 0:
        raise ConfigError(f"MSADS_MEMBERSHIP_DURATION must be 1-{MAX_MEMBERSHIP_DAYS} days, or -1 for no expiry")
    return duration


class _Retry(Exception):
    """Internal: the step must run again (after a refresh or a wait); args = (code, Retry-After or None)."""


class MicrosoftAdsDestination(Destination):
    kind = "microsoft_ads"
    list_prefix = "MSADS"
    supports_replace = True
    required_identifier = "email_sha256"
    requests_per_second = 2.0

    def __init__(self, *, developer_token: str, client_id: str, refresh_token: str, customer_id: str,
                 account_id: str, client_secret: str | None = None, bulk_url: str = DEFAULT_BULK_URL,
                 campaign_url: str | None = None,
                 token_url: str = DEFAULT_TOKEN_URL, token_file: Path = Path(".pusher/msads-refresh-token"),
                 accept_terms: bool | None = None, list_scope: str = "Customer",
                 membership_duration: int | None = NEVER_EXPIRES, max_rows_per_file: int = DEFAULT_ROWS_PER_FILE,
                 max_file_bytes: int = MAX_FILE_BYTES, file_rows_limit: int = MAX_FILE_ROWS,
                 oauth_scope: str = ENVIRONMENTS["production"].scope, apply_max_items: int = APPLY_MAX_ITEMS,
                 poll_seconds: float = 5.0, poll_max_seconds: float = 60.0, poll_timeout_seconds: float = 3600.0,
                 throttle_max_wait_seconds: float = 900.0, rate_wait_seconds: float = 60.0,
                 max_throttle_retries: int = 8, requests_per_second: float | None = None,
                 max_concurrent_uploads: int = 4,
                 retry_policy: RetryPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        for secret in (developer_token, refresh_token, client_secret):
            register_secret(secret)
        self.developer_token = developer_token
        self.customer_id = customer_id
        self.account_id = account_id
        self.accept_terms = accept_terms
        self.list_scope = list_scope
        self.membership_duration = membership_duration
        self.max_members_per_request = max(1, min(max_rows_per_file, file_rows_limit - NON_ITEM_ROWS))
        self.max_file_bytes = max_file_bytes
        self.apply_max_items = apply_max_items
        self.poll_seconds = poll_seconds
        self.poll_max_seconds = poll_max_seconds
        self.poll_timeout_seconds = poll_timeout_seconds
        self.throttle_max_wait_seconds = throttle_max_wait_seconds
        self.rate_wait_seconds = rate_wait_seconds
        self.max_throttle_retries = max_throttle_retries
        self.max_in_flight = max(1, min(max_concurrent_uploads, MAX_CONCURRENT_UPLOADS))
        self._sleep = sleep
        if requests_per_second:
            self.requests_per_second = requests_per_second
        self._policy = retry_policy or RetryPolicy(sleep=sleep)
        self._limiter = RateLimiter(self.requests_per_second, sleep=sleep)
        self._bulk_base = bulk_url.rstrip("/") + BULK_PATH
        self._campaign_base = campaign_endpoint(campaign_url or campaign_base_url(bulk_url))
        self._client = make_client(timeout=120.0)
        self._tokens = TokenProvider(self._client, token_url, client_id, refresh_token, token_file,
                                     client_secret=client_secret, policy=self._policy, scope=oauth_scope)

    @classmethod
    def from_settings(cls, env: Mapping[str, str], project_dir: Path | None = None) -> "MicrosoftAdsDestination":
        return cls.from_env(env, project_dir=project_dir)

    @classmethod
    def from_env(cls, env: Mapping[str, str], project_dir: Path | None = None, **overrides) -> "MicrosoftAdsDestination":
        """project_dir: a relative MSADS_TOKEN_FILE lives there, not in the current directory."""
        required = ["MSADS_DEVELOPER_TOKEN", "MSADS_CLIENT_ID", "MSADS_REFRESH_TOKEN",
                    "MSADS_CUSTOMER_ID", "MSADS_ACCOUNT_ID"]
        missing = [name for name in required if not env.get(name, "").strip()]
        if missing:
            raise ConfigError(f"Microsoft Advertising needs {', '.join(missing)} (environment variables)")
        for name in ("MSADS_CUSTOMER_ID", "MSADS_ACCOUNT_ID"):
            if not env[name].strip().isdigit():
                raise ConfigError(f"{name} must be the numeric id shown in the Microsoft Advertising UI")
        accept = env.get("MSADS_ACCEPT_TERMS", "").strip().lower()
        if accept not in ("", "true", "false", "1", "0", "yes", "no"):
            raise ConfigError(f"MSADS_ACCEPT_TERMS={accept!r} must be true, false or unset")
        scope = env.get("MSADS_LIST_SCOPE", "Customer").strip() or "Customer"
        if scope not in SCOPES:
            raise ConfigError(f"MSADS_LIST_SCOPE={scope!r}: Microsoft documents only {', '.join(SCOPES)} for "
                              "Customer Lists (the Customer List record's Scope); unset it")
        name = env.get("MSADS_ENVIRONMENT", "").strip().lower() or "production"
        if name not in ENVIRONMENTS:
            raise ConfigError(f"MSADS_ENVIRONMENT={name!r} must be production or sandbox")
        environment = ENVIRONMENTS[name]
        token_url, oauth_scope = environment.token_url, environment.scope
        login = env.get("MSADS_SANDBOX_LOGIN", "").strip().lower() or "msa"
        if login not in ("msa", "ppe"):
            raise ConfigError(f"MSADS_SANDBOX_LOGIN={login!r} must be msa or ppe")
        if name == "sandbox" and login == "ppe":
            token_url, oauth_scope = SANDBOX_PPE_LOGIN
        row_limit = environment.max_file_rows
        token_file = Path(env.get("MSADS_TOKEN_FILE", "").strip() or DEFAULT_TOKEN_FILE).expanduser()
        if not token_file.is_absolute() and project_dir is not None:
            token_file = Path(project_dir) / token_file
        duration = membership_duration_setting(env)
        settings = dict(
            developer_token=env["MSADS_DEVELOPER_TOKEN"].strip(),
            client_id=env["MSADS_CLIENT_ID"].strip(),
            client_secret=env.get("MSADS_CLIENT_SECRET", "").strip() or None,
            refresh_token=env["MSADS_REFRESH_TOKEN"].strip(),
            customer_id=env["MSADS_CUSTOMER_ID"].strip(),
            account_id=env["MSADS_ACCOUNT_ID"].strip(),
            bulk_url=env.get("MSADS_BULK_URL", "").strip() or environment.bulk_url,
            campaign_url=env.get("MSADS_CAMPAIGN_URL", "").strip() or None,
            token_url=env.get("MSADS_TOKEN_URL", "").strip() or token_url,
            oauth_scope=oauth_scope,
            file_rows_limit=row_limit,
            token_file=token_file,
            accept_terms=None if not accept else accept in ("true", "1", "yes"),
            list_scope=scope,
            membership_duration=duration,
            max_rows_per_file=_int_setting(env, "MSADS_MAX_ROWS_PER_FILE",
                                           min(DEFAULT_ROWS_PER_FILE, row_limit - NON_ITEM_ROWS), low=1,
                                           high=row_limit - NON_ITEM_ROWS),
            max_file_bytes=_int_setting(env, "MSADS_MAX_FILE_BYTES", MAX_FILE_BYTES, low=1000, high=MAX_FILE_BYTES),
            poll_seconds=_int_setting(env, "MSADS_POLL_SECONDS", 5.0, cast=float, low=0),
            poll_timeout_seconds=_int_setting(env, "MSADS_POLL_TIMEOUT_SECONDS", 3600.0, cast=float, low=0),
            throttle_max_wait_seconds=_int_setting(env, "MSADS_THROTTLE_MAX_WAIT_SECONDS", 900.0,
                                                   cast=float, low=0),
            rate_wait_seconds=_int_setting(env, "MSADS_RATE_WAIT_SECONDS", 60.0, cast=float, low=0),
            max_throttle_retries=_int_setting(env, "MSADS_MAX_THROTTLE_RETRIES", 8, low=0, high=100),
            apply_max_items=_int_setting(env, "MSADS_APPLY_MAX_ITEMS", APPLY_MAX_ITEMS, low=0, high=APPLY_MAX_ITEMS),
            requests_per_second=_int_setting(env, "MSADS_REQUESTS_PER_SECOND", 2.0, cast=float, low=0.01),
            max_concurrent_uploads=_int_setting(env, "MSADS_MAX_CONCURRENT_UPLOADS", 4, low=1,
                                                high=MAX_CONCURRENT_UPLOADS),
        )
        settings.update(overrides)
        return cls(**settings)

    # ---- the Destination interface -------------------------------------------------------

    @classmethod
    def refresh_after_days(cls, env: Mapping[str, str]) -> float | None:
        """With an expiring membership, members older than duration - margin are re-added."""
        duration = membership_duration_setting(env)
        if duration == NEVER_EXPIRES:
            return None
        if not env.get("MSADS_REFRESH_MARGIN_DAYS", "").strip():
            # The default margin never takes more than half of a short duration.
            return max(duration - DEFAULT_REFRESH_MARGIN_DAYS, duration / 2)
        margin = _int_setting(env, "MSADS_REFRESH_MARGIN_DAYS", DEFAULT_REFRESH_MARGIN_DAYS, cast=float, low=0)
        if margin >= duration:
            raise ConfigError(f"MSADS_REFRESH_MARGIN_DAYS={margin:g} must be below MSADS_MEMBERSHIP_DURATION="
                              f"{duration}, or members expire before they are refreshed")
        return duration - margin

    def ensure_list(self, ref: ListRef) -> str:
        if ref.external_id:
            return ref.external_id
        check_audience_name(ref.name)
        existing = self.find_list(ref.name)
        if existing:
            return existing                # first run or lost ledger: reuse, never duplicate
        row = ListRow(list_id=NEW_LIST_REF, audience=ref.name, action_type="Add", scope=self.list_scope,
                      accept_terms=self.accept_terms, membership_duration=self.membership_duration)
        outcome = self._upload(build_upload(row, []), what=f"create list {ref.name!r}")
        if outcome.list_error:
            hint = (" An audience with this name exists but was not found as a Customer List of this"
                    " account (or it appeared since the lookup): rerun, or rename list_name."
                    if "Duplicate" in outcome.list_error else "")
            raise DestinationRequestError(
                f"Microsoft Advertising did not create list {ref.name!r}: {outcome.list_error}.{hint}")
        if not outcome.list_id or outcome.list_id.startswith("-"):
            raise DestinationRequestError(f"the result file for list {ref.name!r} carries no list id")
        return outcome.list_id

    def find_list(self, name: str) -> str | None:
        """The id of the one Customer List called exactly `name`, None if there is none."""
        what = f"look up list {name!r}"
        answer = self._call("Audiences/QueryByIds", {"AudienceIds": None, "Type": "CustomerList"}, what,
                            base=self._campaign_base)
        if answer.get("PartialErrors"):
            detail = "; ".join(f"{c} {n}: {m}" for c, n, m in fault_errors(
                {"BatchErrors": answer["PartialErrors"]})) or "unreadable errors"
            raise DestinationRequestError(f"{what}: the audience list came back incomplete ({detail[:300]}); "
                                          "nothing was created, rerun later")
        ids = customer_list_ids_named(answer.get("Audiences"), name)
        if len(ids) > 1:
            raise ConfigError(
                f"Microsoft Advertising has {len(ids)} Customer Lists named {name!r} (ids {', '.join(ids)}); "
                "the pusher cannot tell which one is its own. Delete or rename the extra ones in "
                "Microsoft Advertising, or change this exposure's list_name, then rerun")
        return ids[0] if ids else None

    def audiences_by_ids(self, ids: Sequence[str]) -> dict:
        """The GetAudiencesByIds answer for these Customer List ids (at most 100), as it comes."""
        return self._call("Audiences/QueryByIds", {"AudienceIds": [str(i) for i in ids], "Type": "CustomerList"},
                          f"look up {len(ids)} list(s)", base=self._campaign_base)

    def add_members(self, ref: ListRef, members: Sequence[Member], *, replace: bool = False) -> BatchResult:
        return self._send(ref, members, "Replace" if replace else "Add")

    def remove_members(self, ref: ListRef, members: Sequence[Member]) -> BatchResult:
        return self._send(ref, members, "Remove")

    def list_members(self, ref: ListRef):
        return None   # the Bulk API cannot download Customer List Items

    def list_size(self, ref: ListRef) -> int | None:
        """0 when no Customer List has this name; None (cannot tell) when one exists: its
        SearchSize / AudienceNetworkSize count people matched on the network, reported ~48 h
        after an upload, not the items uploaded, so they cannot bound a Replace.
        https://learn.microsoft.com/en-us/advertising/bulk-service/customer-list ("After 48
        hours, check the Audience Size fields"), .../campaign-management-service/audience"""
        if ref.external_id or self.find_list(ref.name):
            return None
        return 0

    def close(self) -> None:
        self._client.close()

    # ---- one batch = one or more files ---------------------------------------------------

    def _send(self, ref: ListRef, members: Sequence[Member], action: str) -> BatchResult:
        check_hashes(members)            # before anything leaves: raw emails are refused here
        if not ref.external_id:
            raise DestinationRequestError(f"list {ref.name!r} has no Microsoft Advertising id; call ensure_list first")
        if 0 < len(members) <= self.apply_max_items:
            return self._apply(ref, members, action)
        result = BatchResult()
        if not members and action == "Replace":
            members_chunks: list[list[Member]] = [[]]   # Replace with nothing: wipe the list
        else:
            template = ListRow(list_id=ref.external_id, action_type=action, scope=self.list_scope,
                               accept_terms=self.accept_terms)
            per_file = items_per_file(template, self.max_members_per_request, self.max_file_bytes)
            members_chunks = list(chunked(members, per_file))
        for index, chunk in enumerate(members_chunks):
            # Only the first file of a replace wipes; the rest add to it.
            file_action = action if (action != "Replace" or index == 0) else "Add"
            row = ListRow(list_id=ref.external_id, action_type=file_action, scope=self.list_scope,
                          accept_terms=self.accept_terms)
            outcome = self._upload(build_upload(row, [m.email_sha256 for m in chunk]),
                                   what=f"{file_action} {len(chunk)} members of {ref.name!r}")
            if outcome.list_error:
                raise DestinationRequestError(
                    f"Microsoft Advertising refused list {ref.name!r} ({file_action}): {outcome.list_error}")
            for position, member in enumerate(chunk):
                if position in outcome.item_errors:
                    result.rejected[member.key] = outcome.item_errors[position]
                else:
                    result.accepted.append(member.key)
        return result

    def _apply(self, ref: ListRef, members: Sequence[Member], action: str) -> BatchResult:
        """One synchronous ApplyCustomerListUserData call; per-item errors become rejections."""
        what = f"{action} {len(members)} members of {ref.name!r}"
        answer = self._call(APPLY_OPERATION, apply_body(str(ref.external_id), action, members, self.accept_terms),
                            what, base=self._campaign_base)
        by_index, unplaced = item_errors(answer, len(members))
        if unplaced:
            raise DestinationRequestError(f"{what}: {'; '.join(unplaced)[:500]}")
        result = BatchResult()
        for position, member in enumerate(members):
            if position in by_index:
                result.rejected[member.key] = by_index[position]
            else:
                result.accepted.append(member.key)
        return result

    # ---- the bulk upload round trip ------------------------------------------------------

    def _upload(self, zip_bytes: bytes, *, what: str) -> UploadOutcome:
        def attempt() -> UploadOutcome:
            answer = self._call("BulkUploadUrl/Query",
                                {"AccountId": self.account_id, "ResponseMode": "ErrorsAndResults"}, what)
            self._post_file(str(answer["UploadUrl"]), zip_bytes, what)
            return self._finish(str(answer["RequestId"]), what)

        # A refused or throttled file POST starts again with a fresh single-use URL.
        return self._recovering(attempt, f"{what} (file upload)")

    def _recovering(self, step, what: str):
        """Run step(); on 109 refresh the token once, on 4204/117 wait and rerun, on 3224/3226 rerun."""
        throttles = 0
        refreshed = False
        while True:
            try:
                return step()
            except _Retry as retry:
                code, retry_after = retry.args
            if code == AUTH_EXPIRED:
                if refreshed:
                    raise DestinationAuthError(f"{what}: the access token expired again right after a refresh")
                refreshed = True
                self._tokens.refresh()
                continue
            throttles += 1
            if throttles > self.max_throttle_retries:
                raise DestinationUnavailable(
                    f"{what}: Microsoft Advertising kept answering error {code} after "
                    f"{self.max_throttle_retries} retries; nothing unacknowledged is lost, rerun later")
            self._throttle_wait(code, throttles, retry_after)

    def _throttle_wait(self, code: int, attempt: int, retry_after: float | None = None) -> None:
        if code == NO_MORE_BULK_CALLS:
            wait = min(self.throttle_max_wait_seconds, 60.0 * (2 ** (attempt - 1)))
        elif code in (CALL_RATE_EXCEEDED, TOO_MANY_UPLOADS):
            wait = self.rate_wait_seconds
        else:                            # upload URL spent or expired: just ask for a new one
            wait = 0.0
        if retry_after is not None and code != AUTH_EXPIRED:
            # The service's own word, kept within the configured ceiling (short in tests).
            wait = min(max(retry_after, wait), self.throttle_max_wait_seconds)
        if wait:
            wait *= random.uniform(0.9, 1.0)
            self._limiter.pause(wait)      # the other uploads hold too
            self._sleep(wait)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._tokens.access_token()}",
                "DeveloperToken": self.developer_token, "CustomerId": self.customer_id,
                "CustomerAccountId": self.account_id}

    def _judge(self, response: httpx.Response, what: str) -> dict:
        """The JSON answer of a successful call; _Retry or a PusherError for a fault."""
        try:
            body = response.json()
        except ValueError:
            body = None
        is_fault = isinstance(body, dict) and str(body.get("Type", "")).endswith("FaultDetail")
        if response.status_code < 300 and isinstance(body, dict) and not is_fault:
            return body                  # (a status answer may list Errors of a failed upload)
        errors = fault_errors(body)
        if not errors:
            raise DestinationRequestError(f"{what}: HTTP {response.status_code} without a readable fault")
        codes = {code for code, _, _ in errors}
        text = "; ".join(f"{code} {name}: {message}" for code, name, message in errors)[:500]
        for code in RETRIED_CODES:
            if code in codes:
                raise _Retry(code, parse_retry_after(response.headers.get("Retry-After")))
        if codes & AUTH_REFUSED:
            raise DestinationAuthError(f"{what}: Microsoft Advertising refused the credentials ({text}); "
                                       "check MSADS_DEVELOPER_TOKEN, MSADS_CUSTOMER_ID and MSADS_ACCOUNT_ID")
        raise DestinationRequestError(f"{what}: {text}")

    def _call(self, operation: str, body: dict, what: str, *, base: str | None = None) -> dict:
        """One JSON operation (Bulk unless `base` says otherwise), retried on its own through 109/4204/117."""
        label = f"{what} ({operation})"
        url = f"{base or self._bulk_base}/{operation}"

        def step() -> dict:
            response = send_with_retries(self._client, "POST", url,
                                         policy=self._policy, limiter=self._limiter, what=label,
                                         json=body, headers=self._headers())
            return self._judge(response, label)

        return self._recovering(step, label)

    def _post_file(self, upload_url: str, zip_bytes: bytes, what: str) -> None:
        headers = self._headers()
        headers["AccountId"] = self.account_id      # the SDK names it so on the upload POST
        # The bulk upload guide sends the token as AuthenticationToken, the SDK as Bearer: both.
        headers["AuthenticationToken"] = headers["Authorization"][len("Bearer "):]
        response = send_with_retries(self._client, "POST", upload_url, policy=self._policy,
                                     limiter=self._limiter, what=f"{what} (file upload)",
                                     files={"file": ("upload.zip", zip_bytes, "application/zip")},
                                     headers=headers)
        if response.status_code >= 300:
            self._judge(response, f"{what} (file upload)")

    def _finish(self, request_id: str, what: str) -> UploadOutcome:
        deadline = time.monotonic() + self.poll_timeout_seconds
        delay = self.poll_seconds
        while True:
            status = self._call("BulkUploadStatus/Query", {"RequestId": request_id}, what)
            state = status.get("RequestStatus", "")
            if state in FINAL_STATUSES:
                return self._read_result(status.get("ResultFileUrl") or "", what)
            if state in FAILED_STATUSES:
                detail = "; ".join(f"{c} {n}: {m}" for c, n, m in fault_errors(status)) or "no detail"
                raise DestinationRequestError(f"{what}: the bulk upload ended {state} ({detail})")
            if time.monotonic() + delay > deadline:
                raise DestinationUnavailable(
                    f"{what}: upload {request_id} still {state or 'unknown'} after {self.poll_timeout_seconds:.0f} s; "
                    "nothing unacknowledged is lost, rerun later (raise MSADS_POLL_TIMEOUT_SECONDS for big files)")
            self._sleep(delay)
            delay = min(self.poll_max_seconds, max(delay * 1.5, 0.01))

    def _read_result(self, url: str, what: str) -> UploadOutcome:
        if not url:
            raise DestinationRequestError(f"{what}: the upload completed without a result file URL")
        # Short-lived URL: fetch it now, without our headers (it is a pre-signed download).
        response = send_with_retries(self._client, "GET", url, policy=self._policy, limiter=self._limiter,
                                     what=f"{what} (result file)")
        if response.status_code != 200:
            raise DestinationRequestError(f"{what}: result file download answered HTTP {response.status_code}")
        try:
            _, records = read_bulk_file(response.content, require_bom=False)
        except BulkFileError as exc:
            raise DestinationRequestError(f"{what}: unreadable result file ({exc.message})") from exc
        return read_outcome(records)

