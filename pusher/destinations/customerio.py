"""Customer.io: people, events and objects through the Track API v2 batch, audiences as manual segments.

Contract (each point from Customer.io's public docs or its official SDK):
- Limits: 150-byte ids and attribute names, 1000-byte values, 300 attributes per identify call and
  per person across calls, 32 KB per v2 op, 500 KB per batch ("Customer limits", "v2 API Limits" in
  https://docs.customer.io/api/track/); a person who would hold more than 300 is rejected by name
  before sending (customerio_payloads.person_problem, using what the ledger says it holds).
- Nested values: attributes may be objects and arrays (https://docs.customer.io/journeys/json-in-segments);
  a nested value's JSON must fit the 1000-byte value limit (the docs do not say how it is measured:
  the safe reading).
- 207 partial success: the official SDK treats it as success (customerio-python client_base.py
  send_request), so its `errors[].batch_index` are read here and recorded per row.
- Phone identifier (CUSTOMERIO_IDENTIFIER=phone): v2 `identifiers: {phone}` in E.164, only where the
  workspace has phone as an identifier (OpenAPI person_common); identifiers change only through
  cio_id (OpenAPI identify description), so a changed phone is rejected, not guessed.
- Op-level `timestamp` on identify: "used to control the order of attribute updates when multiple
  requests are sent in rapid succession" (OpenAPI identify_person); we send the row's state time.
- Objects (sync kind `objects`): v2 `type: object` identify with `cio_relationships`, and
  `delete_relationships` (OpenAPI object_identify, object_delete_relationships); object type ids are
  string-formatted integers from 1; objects and relationships have the person limits plus 100 KB of
  attributes in all ("Object and relationship limits").

Settings (environment):
  CUSTOMERIO_SITE_ID, CUSTOMERIO_API_KEY     Track API Basic auth (required)
  CUSTOMERIO_APP_API_KEY                     App API Bearer key (needed for segments)
  CUSTOMERIO_REGION                          us (default) | eu
  CUSTOMERIO_TRACK_URL, CUSTOMERIO_APP_URL   base URL overrides (an emulator, a proxy)
  CUSTOMERIO_RATE_LIMIT                      Track API requests per second (default 100, the documented limit), shared by
      all workers: at most that many reach Customer.io in any second (plus CUSTOMERIO_RATE_JITTER_SECONDS)
  CUSTOMERIO_RATE_JITTER_SECONDS             a margin added to that second (default 0 with window pacing, which
      counts from the ends of requests and needs none; 0.05 with even pacing, which counts starts)
  CUSTOMERIO_RATE_PEAK                       window pacing: starts a second at most at any moment (default 2.5 x
      CUSTOMERIO_RATE_LIMIT): bounds the requests a burst has in flight when a 429 comes back
  CUSTOMERIO_RATE_PACING                     window (default) | even: how starts are spread in that span (below)
  CUSTOMERIO_MAX_IN_FLIGHT                   Track API requests in flight at once (default 32; 1 = one at a time)
  CUSTOMERIO_IDENTIFIER                      id (default) | phone: how identify ops find a person. phone
      is for workspaces with phone as an identifier (Track API v2 `identifiers: {phone}`, E.164;
      https://docs.customer.io/api/track/ person_common): the people model then needs a `phone`
      column; a new person also gets our customer_id as its `id`, since events and segment calls go
      by id. A changed phone is rejected by name: Customer.io changes identifiers only by cio_id.
  CUSTOMERIO_MAX_ATTEMPTS, CUSTOMERIO_RETRY_BASE_DELAY, CUSTOMERIO_RETRY_MAX_DELAY   retry policy

Customer.io documents a rate (100 requests/s fair use for the Track API, v1 and v2:
https://docs.customer.io/integrations/api/track/), not a number of concurrent requests, and
does not say how the second is counted. The shared Track API limiter reads it as a sliding
window, the strictest common reading (pusher.http.WindowLimiter): a request starts only once
the request CUSTOMERIO_RATE_LIMIT places before it ended, answered or failed, at least 1 s ago.
Customer.io counts a request between those two moments, so no second of its clock sees more
than the limit, however requests bunch or lag on the way; a small sync goes at once, and a
start woken late on a busy machine keeps its slot. The price is one round trip per window (100
per 1.1 s at 100 ms). If an account's limit proves smoothed over the second, a 429 is retried
after its Retry-After and holds every worker, losing nothing; CUSTOMERIO_RATE_PACING=even then
spreads the same count evenly instead (pusher.http.RateLimiter, counted from starts: 100 per
1.05 s, 95.2/s, with its default margin). The rate is what the shared limiter enforces;
CUSTOMERIO_MAX_IN_FLIGHT only has to cover the round trip plus the time the engine spends
writing acknowledged batches to the ledger, during which the requests already queued at the
limiter keep going (32 kept the rate going at round trips of 100 ms with 230 ms of ledger
writes; 64 was no faster in the delivery benchmark on a loaded machine, where writes took up to
550 ms, and peaked a few MB higher; 64 or 100 were no faster at 100k members either, whose
batches are CPU-bound). Methods are thread-safe:
httpx clients and the rate limiters are shared, nothing else is mutated per request.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterator, Mapping, Sequence
from urllib.parse import quote

import httpx

from pusher.destinations import customerio_payloads as payloads
from pusher.destinations.base import (BatchResult, Destination, Event, ListRef, Member, ObjectUpdate, PersonUpdate,
                                      chunked)
from pusher.errors import (ConfigError, DestinationAuthError, DestinationRequestError, DestinationUnavailable,
                           register_secret)
from pusher.http import RateLimiter, RetryPolicy, WindowLimiter, make_client, send_with_retries

REGIONS = {
    "us": ("https://track.customer.io", "https://api.customer.io"),
    "eu": ("https://track-eu.customer.io", "https://api-eu.customer.io"),
}
APP_API_REQUESTS_PER_SECOND = 10.0   # documented App API limit
DOCUMENTED_REQUESTS_PER_SECOND = 100.0   # Track API fair use, https://docs.customer.io/integrations/api/track/
DEFAULT_REQUESTS_PER_SECOND = DOCUMENTED_REQUESTS_PER_SECOND
# The margin added to the documented second, per pacing. Even pacing counts starts, so requests
# bunched on the way by up to 50 ms must still fit a strict second; the window counts from the
# ends of requests, after Customer.io has counted them, and needs no margin.
DEFAULT_JITTER_SECONDS = {"window": 0.0, "even": 0.05}
# Default CUSTOMERIO_RATE_PEAK, times the rate: starts at least 4 ms apart at 100/s. Requests
# already in flight when the first 429 comes back are refused too (an account limit lower than
# configured, or shared): the peak bounds that burst, and costs a small sync nothing, since 32 in
# flight at 100 ms round trips cannot start more than 320 a second anyway.
PEAK_FACTOR = 2.5
PACINGS = ("window", "even")
DEFAULT_MAX_IN_FLIGHT = 32
MEMBERSHIP_PAGE_SIZE = 1000
LOOKUP_REUSE_SECONDS = 5.0           # a segment lookup this recent is not repeated before a create
SEGMENT_DESCRIPTION = "Managed by pusher from the warehouse; membership is overwritten by every sync."


class CustomerIoDestination(Destination):
    kind = "customerio"
    list_prefix = "CIO"
    max_members_per_request = 1000
    requests_per_second = DEFAULT_REQUESTS_PER_SECOND
    supports_replace = False
    needs_known_people = True        # add_customers silently ignores ids matching nobody
    supports_people = True
    supports_events = True
    required_identifier = "key"

    def __init__(self, site_id: str, api_key: str, app_api_key: str | None = None, *,
                 region: str = "us", track_url: str | None = None, app_url: str | None = None,
                 requests_per_second: float = DEFAULT_REQUESTS_PER_SECOND,
                 retry: RetryPolicy | None = None, timeout: float = 30.0,
                 max_request_bytes: int = payloads.MAX_REQUEST_BYTES, identify_by: str = "id",
                 max_in_flight: int = DEFAULT_MAX_IN_FLIGHT, jitter_seconds: float | None = None,
                 pacing: str = "window", peak_per_second: float | None = None):
        if region not in REGIONS:
            raise ConfigError(f"CUSTOMERIO_REGION is {region!r}; use 'us' or 'eu'")
        if identify_by not in payloads.IDENTIFY_BY:
            raise ConfigError(f"CUSTOMERIO_IDENTIFIER is {identify_by!r}; use 'id' or 'phone'")
        if pacing not in PACINGS:
            raise ConfigError(f"CUSTOMERIO_RATE_PACING is {pacing!r}; use 'window' or 'even'")
        self.identify_by = identify_by
        for secret in (api_key, app_api_key):
            register_secret(secret)
        default_track, default_app = REGIONS[region]
        self.track_url = (track_url or default_track).rstrip("/")
        self.app_url = (app_url or default_app).rstrip("/")
        self.requests_per_second = requests_per_second
        self.pacing = pacing
        self.jitter_seconds = DEFAULT_JITTER_SECONDS[pacing] if jitter_seconds is None else jitter_seconds
        self.max_in_flight = max(1, int(max_in_flight))
        self.retry = retry or RetryPolicy()
        self.max_request_bytes = max_request_bytes
        self._track = make_client(self.track_url, auth=(site_id, api_key), timeout=timeout,
                                  in_flight=self.max_in_flight)
        self.peak_per_second = peak_per_second or requests_per_second * PEAK_FACTOR
        self._track_limiter = track_limiter(requests_per_second, self.jitter_seconds, pacing, self.peak_per_second)
        self._app: httpx.Client | None = None
        if app_api_key:
            self._app = make_client(self.app_url, headers={"Authorization": f"Bearer {app_api_key}"},
                                    timeout=timeout)
        self._app_limiter = RateLimiter(APP_API_REQUESTS_PER_SECOND)
        self._lookups: dict[str, tuple[float, str | None]] = {}   # name -> (when, segment id) of the last lookup
        self._looking_up: dict[str, threading.Thread] = {}         # name -> lookup started by look_up_list
        self._created_empty: set[str] = set()   # segment ids created here, whose membership nothing changed since

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "CustomerIoDestination":
        def required(name: str) -> str:
            value = (env.get(name) or "").strip()
            if not value:
                raise ConfigError(f"{name} is not set; export it (Customer.io > Settings > API credentials)")
            return value

        site_id, api_key = required("CUSTOMERIO_SITE_ID"), required("CUSTOMERIO_API_KEY")
        register_secret(api_key)
        app_api_key = (env.get("CUSTOMERIO_APP_API_KEY") or "").strip() or None
        register_secret(app_api_key)
        defaults = RetryPolicy()
        retry = RetryPolicy(
            max_attempts=int(_number(env, "CUSTOMERIO_MAX_ATTEMPTS", defaults.max_attempts, minimum=1)),
            base_delay=_number(env, "CUSTOMERIO_RETRY_BASE_DELAY", defaults.base_delay, minimum=0),
            max_delay=_number(env, "CUSTOMERIO_RETRY_MAX_DELAY", defaults.max_delay, minimum=0),
        )
        return cls(site_id, api_key, app_api_key,
                   region=(env.get("CUSTOMERIO_REGION") or "us").strip().lower(),
                   track_url=(env.get("CUSTOMERIO_TRACK_URL") or "").strip() or None,
                   app_url=(env.get("CUSTOMERIO_APP_URL") or "").strip() or None,
                   requests_per_second=_number(env, "CUSTOMERIO_RATE_LIMIT", DEFAULT_REQUESTS_PER_SECOND,
                                               minimum=0.001),
                   retry=retry,
                   max_in_flight=int(_number(env, "CUSTOMERIO_MAX_IN_FLIGHT", DEFAULT_MAX_IN_FLIGHT, minimum=1)),
                   identify_by=(env.get("CUSTOMERIO_IDENTIFIER") or "id").strip().lower(),
                   jitter_seconds=_number(env, "CUSTOMERIO_RATE_JITTER_SECONDS", None, minimum=0),
                   pacing=(env.get("CUSTOMERIO_RATE_PACING") or "window").strip().lower(),
                   peak_per_second=_number(env, "CUSTOMERIO_RATE_PEAK", 0.0, minimum=0.001) or None)

    # ----- audiences: manual segments -------------------------------------------------------------

    def ensure_list(self, ref: ListRef) -> str:
        """The segment id for `ref`: remembered, found by exact name, or created once.

        Looking the name up before creating means a lost ledger, or a create whose answer was
        lost on the wire, never leaves two segments with the same name. A lookup made moments
        ago (a first sync asks the list's size just before), or under way (look_up_list), is not
        repeated on the first try.
        """
        if ref.external_id:
            return str(ref.external_id)
        return self._find_or_create(ref.name, reuse_recent=True)

    def _find_or_create(self, name: str, reuse_recent: bool) -> str:
        what = f"creating segment {name!r}"
        for attempt in range(1, self.retry.max_attempts + 1):
            existing = self._find_segment(name, recent_ok=reuse_recent and attempt == 1)
            if existing:
                return existing
            try:
                # One attempt only: a retry after a lost answer must look the name up again first.
                response = self._app_send("POST", "/v1/segments", what=what, attempts=1,
                                          json={"segment": {"name": name, "description": SEGMENT_DESCRIPTION}})
            except DestinationUnavailable:
                if attempt == self.retry.max_attempts:
                    raise
                self.retry.sleep(self.retry.backoff(attempt, None))
                continue
            self._raise_for(response, what, app=True)
            segment = _json(response).get("segment") or {}
            if "id" not in segment:
                raise DestinationRequestError(f"{what}: Customer.io answered without a segment id")
            self._created_empty.add(str(segment["id"]))
            self._lookups[name] = (time.monotonic(), str(segment["id"]))
            return str(segment["id"])
        raise DestinationUnavailable(f"{what} failed after {self.retry.max_attempts} attempts")

    def look_up_list(self, ref: ListRef) -> None:
        """A first sync's segment is found by name, or created, on another thread while the plan
        runs; list_size and ensure_list then reuse its answer (a created segment is known to be
        empty: its size costs no request). A failure is forgotten here: whoever needs the segment
        looks it up again, creates it if need be, and reports. The price: a first sync that a
        guard then stops leaves its new segment empty, and the next run fills it."""
        if ref.external_id or self._app is None or ref.name in self._looking_up:
            return

        def find_or_create() -> None:
            try:
                self._find_or_create(ref.name, reuse_recent=False)
            except Exception:  # made again, and reported, by the caller
                self._lookups.pop(ref.name, None)     # a create whose answer was lost: look again

        thread = threading.Thread(target=find_or_create, name="pusher-lookup", daemon=True)
        self._looking_up[ref.name] = thread
        thread.start()

    def _find_segment(self, name: str, recent_ok: bool = False) -> str | None:
        """The oldest manual segment named `name`; with recent_ok, the answer of a lookup made
        less than LOOKUP_REUSE_SECONDS ago (or under way: look_up_list)."""
        if recent_ok and name in self._looking_up:
            self._looking_up.pop(name).join()
        seen = self._lookups.get(name)
        if recent_ok and seen and time.monotonic() - seen[0] < LOOKUP_REUSE_SECONDS:
            return seen[1]
        response = self._app_send("GET", "/v1/segments", what="listing segments")
        self._raise_for(response, "listing segments", app=True)
        matches = [segment for segment in _json(response).get("segments") or []
                   if segment.get("name") == name and segment.get("type") == "manual"]
        # Several manual segments of one name (made by hand): the oldest one is the stable choice.
        matches.sort(key=lambda segment: int(segment["id"]))
        found = str(matches[0]["id"]) if matches else None
        self._lookups[name] = (time.monotonic(), found)
        return found

    def add_members(self, ref: ListRef, members: Sequence[Member], *, replace: bool = False) -> BatchResult:
        if replace:
            raise NotImplementedError("Customer.io manual segments cannot be replaced in one call")
        return self._change_membership(ref, members, "add_customers")

    def remove_members(self, ref: ListRef, members: Sequence[Member]) -> BatchResult:
        return self._change_membership(ref, members, "remove_customers")

    def _change_membership(self, ref: ListRef, members: Sequence[Member], action: str) -> BatchResult:
        segment_id = self.ensure_list(ref)
        result = BatchResult()
        keys = [member.key for member in members]
        problems = payloads.id_problems("customer id", keys)
        sendable = keys
        if problems:
            result.rejected = {keys[index]: problem for index, problem in problems.items()}
            sendable = [key for index, key in enumerate(keys) if index not in problems]
        self._created_empty.discard(segment_id)
        path = f"/api/v1/segments/{quote(segment_id, safe='')}/{action}"
        for ids in chunked(sendable, self.max_members_per_request):
            what = f"{action} for segment {ref.name!r} ({len(ids)} ids)"
            response = self._track_send("POST", path, what=what, params={"id_type": "id"}, json={"ids": ids})
            if response.status_code == 404:
                raise DestinationRequestError(
                    f"{what}: Customer.io has no segment {segment_id}; it may have been deleted there. "
                    "Run `pusher reset SYNC` for this sync, then sync again to recreate and fill it")
            self._raise_for(response, what)
            result.accepted.extend(ids)  # ids matching nobody are silently ignored by the API
        return result

    def list_members(self, ref: ListRef) -> Iterator[str] | None:
        segment_id = ref.external_id or self._find_segment(ref.name, recent_ok=True)
        if not segment_id or segment_id in self._created_empty:
            return iter(())
        return self._iter_membership(str(segment_id), ref.name)

    def _iter_membership(self, segment_id: str, name: str) -> Iterator[str]:
        what = f"reading members of segment {name!r}"
        start: str | None = None
        while True:
            params: dict[str, Any] = {"limit": MEMBERSHIP_PAGE_SIZE}
            if start:
                params["start"] = start
            response = self._app_send("GET", f"/v1/segments/{quote(segment_id, safe='')}/membership",
                                      what=what, params=params)
            self._raise_for(response, what, app=True)
            page = _json(response)
            identifiers = page.get("identifiers")
            ids = [item.get("id") for item in identifiers] if isinstance(identifiers, list) else page.get("ids") or []
            yield from (str(member_id) for member_id in ids if member_id not in (None, ""))
            start = page.get("next") or None
            if not start or not ids:
                return

    def person_view(self, customer_id: str) -> dict[str, Any] | None:
        """What Customer.io holds for one person: its segment names and attributes, read back through
        the App API (GET /v1/customers/{id}/segments and /attributes?id_type=id, as customerio-node's
        APIClient.getAttributes calls it). None when Customer.io does not know the person (404)."""
        path = f"/v1/customers/{quote(customer_id, safe='')}"
        found: dict[str, Any] = {}
        for part in ("segments", "attributes"):
            what = f"reading the {part} of one person"
            response = self._app_send("GET", f"{path}/{part}", what=what, params={"id_type": "id"})
            if response.status_code == 404:
                return None
            self._raise_for(response, what, app=True)
            found[part] = _json(response)
        segments = found["segments"].get("segments") or []
        customer = found["attributes"].get("customer") or {}
        return {"segments": sorted(str(segment.get("name")) for segment in segments),
                "attributes": customer.get("attributes") or {}}

    # ----- people and events: v2 batch ----------------------------------------------------------------

    def upsert_people(self, people: Sequence[PersonUpdate]) -> BatchResult:
        def problem_of(update: PersonUpdate) -> str | None:
            problem = payloads.person_problem(update)
            if not problem and self.identify_by == "phone":
                problem = payloads.phone_problem(update)
            return problem

        return self._send_ops(people, lambda p: p.key, problem_of,
                              lambda update: payloads.identify_op(update, self.identify_by), "identify")

    def send_events(self, events: Sequence[Event]) -> BatchResult:
        return self._send_ops(events, lambda e: e.key, payloads.event_problem, payloads.event_op, "event")

    def upsert_objects(self, objects: Sequence[ObjectUpdate]) -> BatchResult:
        return self._send_ops(objects, lambda o: o.key, payloads.object_problem, payloads.object_ops, "object")

    def _send_ops(self, rows: Sequence[Any], key_of: Callable[[Any], str], problem_of: Callable[[Any], str | None],
                  op_of: Callable[[Any], dict[str, Any] | list[dict[str, Any]]], what: str) -> BatchResult:
        """Send each row's op(s) in v2 batches; a row is accepted only when all its ops are."""
        result = BatchResult()
        encoded: list[tuple[str, bytes]] = []
        sent: list[str] = []
        for row in rows:
            key = key_of(row)
            problem = problem_of(row)
            row_ops: list[bytes] = []
            if not problem:
                ops = op_of(row)
                for op in ops if isinstance(ops, list) else [ops]:
                    data, problem = payloads.encode_op(op)
                    if problem:
                        break
                    row_ops.append(data)
            if problem:
                result.rejected[key] = f"not sent: {problem}"
            else:
                encoded.extend((key, data) for data in row_ops)
                sent.append(key)
        for batch in payloads.pack_batches(encoded, self.max_request_bytes):
            keys = [key for key, _ in batch]
            label = f"{what} batch of {len(keys)}"
            response = self._track_send("POST", "/api/v2/batch", what=label,
                                        content=payloads.batch_body([data for _, data in batch]),
                                        headers={"Content-Type": "application/json"})
            if response.status_code == 207:
                rejected = payloads.partial_rejections(_json(response), keys)
                if not rejected:
                    raise DestinationRequestError(
                        f"{label}: Customer.io answered 207 without readable errors "
                        f"({payloads.error_message(_json(response))}); nothing was acknowledged")
                for index, key in enumerate(keys):
                    if index in rejected:
                        earlier = result.rejected.get(key)
                        result.rejected[key] = f"{earlier}; {rejected[index]}" if earlier else rejected[index]
                continue
            self._raise_for(response, label)
        result.accepted.extend(key for key in sent if key not in result.rejected)
        return result

    # ----- HTTP -----------------------------------------------------------------------------------------

    def _track_send(self, method: str, path: str, *, what: str, **kwargs) -> httpx.Response:
        return send_with_retries(self._track, method, path, policy=self.retry, limiter=self._track_limiter,
                                 what=f"Customer.io {what}", **kwargs)

    def _app_send(self, method: str, path: str, *, what: str, attempts: int | None = None,
                  **kwargs) -> httpx.Response:
        if self._app is None:
            raise ConfigError("CUSTOMERIO_APP_API_KEY is not set; it is needed to create and read segments")
        policy = self.retry
        if attempts is not None:
            policy = RetryPolicy(max_attempts=attempts, base_delay=policy.base_delay,
                                 max_delay=policy.max_delay, sleep=policy.sleep, rng=policy.rng)
        return send_with_retries(self._app, method, path, policy=policy, limiter=self._app_limiter,
                                 what=f"Customer.io App API {what}", **kwargs)

    def _raise_for(self, response: httpx.Response, what: str, *, app: bool = False) -> None:
        """Return quietly on 2xx; otherwise raise the error the caller's rows deserve (never retried)."""
        status = response.status_code
        if 200 <= status < 300:
            return
        detail = payloads.error_message(_json(response) or response.text)
        if status in (401, 403):
            names = "CUSTOMERIO_APP_API_KEY" if app else "CUSTOMERIO_SITE_ID / CUSTOMERIO_API_KEY"
            raise DestinationAuthError(f"Customer.io refused our credentials for {what} (HTTP {status}: "
                                       f"{detail}); check {names}")
        raise DestinationRequestError(f"Customer.io refused {what} (HTTP {status}: {detail})")

    def close(self) -> None:
        self._track.close()
        if self._app is not None:
            self._app.close()


def _json(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if body is not None else {}


def track_limiter(per_second: float, jitter_seconds: float | None = None, pacing: str = "window",
                  peak_per_second: float | None = None, **timing: Any) -> WindowLimiter | RateLimiter:
    """The Track API limiter: at most `per_second` requests in any 1 s + `jitter_seconds` (default
    per pacing), counted from the ends of requests and at most `peak_per_second` starts a second
    (window; default 2.5 x the rate), or starts evenly spaced over that span (even). `timing`: clock and
    sleep, for tests."""
    margin = DEFAULT_JITTER_SECONDS[pacing] if jitter_seconds is None else jitter_seconds
    window = WindowLimiter.for_rate(per_second, margin, peak_per_second or per_second * PEAK_FACTOR, **timing)
    return window if pacing == "window" else RateLimiter(window.limit / window.window, **timing)


def _number(env: Mapping[str, str], name: str, default: Any, *, minimum: float) -> Any:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} is {raw!r}; it must be a number") from None
    if value < minimum:
        raise ConfigError(f"{name} is {raw}; it must be at least {minimum}")
    return value
