"""Customer.io emulator: Track API (v1 + v2 batch) and the App API's segments, held in memory.

Run it with `pusher emulate customerio --port 8701` and point the pusher at it:
  CUSTOMERIO_TRACK_URL=http://127.0.0.1:8701  CUSTOMERIO_APP_URL=http://127.0.0.1:8701

Credentials and workspace settings (environment, read when the app is created):
  CUSTOMERIO_EMULATOR_SITE_ID      Track API Basic-auth user      (default "demo-site")
  CUSTOMERIO_EMULATOR_API_KEY      Track API Basic-auth password  (default "demo-key")
  CUSTOMERIO_EMULATOR_APP_API_KEY  App API Bearer token           (default "demo-app-key")
  CUSTOMERIO_EMULATOR_PHONE_IDENTIFIER  true: the workspace has `phone` as an identifier (default off)
  CUSTOMERIO_EMULATOR_OBJECT_TYPES      object type ids the workspace has (default "1,2")

Sources (every rule below comes from one of them):
  [limits]  Track API reference, "Customer limits" / "Object and relationship limits" / "v2 API Limits"
            (https://docs.customer.io/api/track/, OpenAPI https://docs.customer.io/files/journeys-track.json)
  [errors]  "Invalid API requests" (https://docs.customer.io/journeys/invalid-api-requests): the 400
            messages, e.g. "cannot identify more than 300 attributes in one request"
  [sdk]     official Python SDK customerio/customerio-python (customerio/track.py, client_base.py)

Per-person attribute cap [limits: "Unique attributes | 300 | Max number of attributes allowed per
person or Identify call"]: an identify that would leave a person holding more than 300 attributes
(counted across calls: held ones, plus new non-null ones, minus those it clears with null) is refused
whole, 400 on v1 and a 207 entry on v2. Only the per-request message is documented; the per-person one
is worded after it ("cannot hold more than 300 attributes per person ...").

Phone identifier: a v2 op's `identifiers` may be `{"phone": ...}` only "if they're enabled as
identifiers in your workspace settings" and in E.164, "a leading + followed by up to 15 digits"
(OpenAPI `person_common.identifiers`); otherwise the op is refused (207 entry, field identifiers).
On v1 paths "a phone number in the path is treated as an id" (`track_customer_id`). A person found
or created by phone holds it as its `phone` attribute.

Op-level `timestamp` on v2 identify: "The Unix timestamp for when the attribute update occurred.
This can be used to control the order of attribute updates when multiple requests are sent in rapid
succession" (OpenAPI `identify_person.timestamp`). The emulator keeps, per person and attribute, the
timestamp of the op that last set it: a timestamped op does not overwrite an attribute that a newer
timestamped op set (its other attributes apply; equal timestamps apply, in arrival order), within a
batch or across requests. The docs do not say how ops without a timestamp are ordered against
timestamped ones: here they apply in arrival order and leave the stamps as they are. A timestamp that
is not whole Unix seconds is refused (field `timestamp`).

Merge (POST /api/v1/merge_customers, OpenAPI `merge_customers`): `primary` and `secondary` each
hold exactly one of id, email, cio_id (400 otherwise); if either person does not exist nothing
happens (200). The primary gains the secondary's attributes it has unset or empty, its events of the
last 30 days and its manual segments; the secondary is deleted.

Objects and relationships (v2 `type: object`, OpenAPI `object_identify`, `object_delete`,
`object_add_relationships`, `object_delete_relationships`, `v2_cio_relationships`; the "Object and
relationship limits" of [limits]): identifiers are `object_type_id` ("string-formatted integers that
begin at 1") and `object_id` (at most 150 bytes); the type must exist ("Before you can create an
object, you must create an object type", https://docs.customer.io/messaging/objects-data/objects/create/);
attributes follow the person limits (150-byte names, 1000-byte values, 300 per call and per object
across calls) and may total at most 100 KB per object or relationship; null or "" removes an object
attribute. `cio_relationships` is a list whose items name one person by id, email or cio_id, with
optional `relationship_attributes`; add/delete_relationships need a non-empty one. Relationships to
people who do not exist are ignored (the docs do not say; segment calls ignore unknown ids alike);
deleting a person removes its relationships. `cio_object_id` identifiers are refused as not
implemented. GET /_emulator/state lists objects with their attributes and related people.

Nested attribute values: "Attributes and event data can contain nested (JSON) values—arrays,
objects, and arrays of objects" (https://docs.customer.io/journeys/json-in-segments); the v1 and v2
identify schemas take any JSON value per attribute ("additionalProperties" in the OpenAPI). The
1000-byte value limit [limits] is applied to a nested value's compact JSON encoding: the docs do not
say how a nested value is measured, so the emulator takes the strict reading.

It enforces what contracts/customerio.md lists: auth (401), every size limit (400 with a
Customer.io-shaped body, both `meta.error` and `meta.errors` shapes), 1..1000 ids and a valid
`id_type` per segment call, an integer, existing, manual segment, event dedupe by `id`, `_update`
(never creates a profile), v2 batch limits and 207 partial errors, the App API's 10 req/s, and
the fault knobs of EmulatorOptions: rate_limit (429 with Retry-After), fail_rate (injected 500/503
and dropped connections, some after the request was applied), latency_ms, seed.

Where the public docs are silent the emulator picks, and says so here:
- an unknown segment answers 404; a non-integer or non-manual one 400;
- events and identify by `id` or email create the person when missing (unless `_update`);
- `timestamp`/`created_at` must be whole Unix seconds (values >= 1e11 look like milliseconds: 400);
- event ids must be ULIDs; null removes the attribute;
- a v2 op over 32 KB is reported in the 207 errors; a request over 500 KB is a 400.
- a fresh workspace holds one data-driven segment (id 1), as real workspaces do.

One person, App API (customerio-node APIClient.getAttributes; App API "Get a person's segments"):
GET /v1/customers/{id}/attributes answers {"customer": {"id", "identifiers", "attributes", ...}} and
GET /v1/customers/{id}/segments {"segments": [...]}, both with `id_type` id|email|cio_id, 404 if unknown.

Inspection, never subject to auth or faults: GET /_emulator/state, GET /_emulator/stats (counts by
endpoint and status; a dropped connection counts as `dropped`, or `dropped_after_apply` when the
request had been applied first).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import random
import re
import threading
import time
from collections import Counter, defaultdict, deque
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pusher.emulators.options import EmulatorOptions

ID_LIMIT = 150
ATTRIBUTE_NAME_LIMIT = 150
ATTRIBUTE_VALUE_LIMIT = 1000
ATTRIBUTES_PER_CALL = 300
ATTRIBUTES_PER_PERSON = 300
NOT_HELD = frozenset({"_update", "_timestamp", "id"})   # request keys that are not stored attributes
EVENT_NAME_LIMIT = 100
EVENT_DATA_LIMIT = 100_000
BATCH_REQUEST_LIMIT = 500 * 1024
OP_LIMIT = 32 * 1024
SEGMENT_IDS_LIMIT = 1000
APP_API_PER_SECOND = 10.0
MEMBERSHIP_DEFAULT_LIMIT = 1000
MEMBERSHIP_MAX_LIMIT = 30_000
ID_TYPES = ("id", "email", "cio_id")
E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")   # "a leading + followed by up to 15 digits"
_ULID = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$", re.IGNORECASE)
_ENDPOINTS = [
    (re.compile(r"^/api/v1/customers/[^/]+/events$"), "/api/v1/customers/{identifier}/events"),
    (re.compile(r"^/api/v1/customers/[^/]+$"), "/api/v1/customers/{identifier}"),
    (re.compile(r"^/api/v1/segments/[^/]+/add_customers$"), "/api/v1/segments/{segment_id}/add_customers"),
    (re.compile(r"^/api/v1/segments/[^/]+/remove_customers$"), "/api/v1/segments/{segment_id}/remove_customers"),
    (re.compile(r"^/v1/segments/[^/]+/membership$"), "/v1/segments/{segment_id}/membership"),
    (re.compile(r"^/v1/customers/[^/]+/attributes$"), "/v1/customers/{customer_id}/attributes"),
    (re.compile(r"^/v1/customers/[^/]+/segments$"), "/v1/customers/{customer_id}/segments"),
    (re.compile(r"^/v1/segments/[^/]+$"), "/v1/segments/{segment_id}"),
]


# ----- validation (pure) ------------------------------------------------------------------------------

def _size(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def _is_unix_seconds(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return float(value).is_integer() and 0 <= value < 1e11


def identifier_error(name: str, value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value).strip() == "":
        return f"{name} must be a non-empty string"
    if _size(str(value)) > ID_LIMIT:
        return f"{name} is {_size(str(value))} bytes; the limit is {ID_LIMIT}"
    return None


def attribute_errors(attributes: Any) -> list[str]:
    """Everything wrong with an identify's attributes (an empty list when they are fine)."""
    if not isinstance(attributes, dict):
        return ["attributes must be a JSON object"]
    errors = []
    names = [name for name in attributes if name not in ("_update", "_timestamp")]
    if len(names) > ATTRIBUTES_PER_CALL:
        errors.append(f"cannot identify more than {ATTRIBUTES_PER_CALL} attributes in one request "
                      f"(got {len(names)})")
    for name, value in attributes.items():
        if name == "_update":
            if not isinstance(value, bool):
                errors.append("_update must be a boolean")
        elif name in ("_timestamp", "created_at"):
            if not (value is None and name == "created_at") and not _is_unix_seconds(value):
                errors.append(f"{name} must be a Unix timestamp in whole seconds, got {value!r}")
        elif name == "id":
            problem = identifier_error("id", value)
            if problem:
                errors.append(problem)
        elif not name or _size(name) > ATTRIBUTE_NAME_LIMIT:
            errors.append(f"attribute name {name[:40]!r} is {_size(name)} bytes; allowed 1..{ATTRIBUTE_NAME_LIMIT}")
        elif _size(value) > ATTRIBUTE_VALUE_LIMIT:
            errors.append(f"value for attribute '{name}' cannot be longer than {ATTRIBUTE_VALUE_LIMIT} bytes "
                          f"(got {_size(value)} bytes)")
    return errors


def held_attributes_error(held: set[str], attributes: dict[str, Any]) -> str | None:
    """The per-person cap: the attributes a person would hold after this identify, across calls."""
    after = set(held)
    for name, value in attributes.items():
        if name in NOT_HELD:
            continue
        if value is None:
            after.discard(name)
        else:
            after.add(name)
    if len(after) > ATTRIBUTES_PER_PERSON and len(after) > len(held):
        return (f"cannot hold more than {ATTRIBUTES_PER_PERSON} attributes per person: this identify would "
                f"leave {len(after)} (the person holds {len(held)})")
    return None


OBJECT_ACTIONS = ("identify", "delete", "add_relationships", "delete_relationships")
OBJECT_ATTRIBUTES_LIMIT = 100 * 1024   # "Total attribute size | 100 Kilobytes" per object or relationship


def _bag_errors(what: str, attributes: Any) -> list[str]:
    """Object or relationship attributes: the person limits, plus 100 KB in all."""
    if not isinstance(attributes, dict):
        return [f"{what} must be a JSON object"]
    errors = attribute_errors(attributes)
    if _size(attributes) > OBJECT_ATTRIBUTES_LIMIT:
        errors.append(f"{what} are {_size(attributes)} bytes; the limit is {OBJECT_ATTRIBUTES_LIMIT} in all")
    return errors


def object_op_error(op: dict[str, Any], object_types: set[str]) -> dict[str, str] | None:
    """Why a v2 `type: object` op is refused, or None (OpenAPI object_* schemas, [limits])."""
    def refuse(field: str, message: str, reason: str = "invalid") -> dict[str, str]:
        return {"reason": reason, "field": field, "message": message}

    identifiers = op.get("identifiers")
    if not isinstance(identifiers, dict) or set(identifiers) != {"object_type_id", "object_id"}:
        return refuse("identifiers", "object identifiers must be object_type_id and object_id "
                                     "(cio_object_id is not implemented by the emulator)")
    type_id, object_id = identifiers["object_type_id"], identifiers["object_id"]
    if not isinstance(type_id, str) or not type_id.isdigit() or int(type_id) < 1:
        return refuse("identifiers", f"object_type_id must be a string-formatted integer from 1, got {type_id!r}")
    if type_id not in object_types:
        return refuse("identifiers", f"object type {type_id} does not exist in this workspace")
    problem = identifier_error("object_id", object_id)
    if problem:
        return refuse("identifiers", problem)
    action = op.get("action")
    if action not in OBJECT_ACTIONS:
        return refuse("action", f"action {action!r} is not one of {', '.join(OBJECT_ACTIONS)}", "unsupported")
    if action == "identify":
        errors = _bag_errors("attributes", op.get("attributes") or {})
        if errors:
            return refuse("attributes", "; ".join(errors))
    relationships = op.get("cio_relationships")
    if relationships is None and action in ("add_relationships", "delete_relationships"):
        return refuse("cio_relationships", f"{action} needs cio_relationships")
    if relationships is not None:
        if not isinstance(relationships, list) or (not relationships and action != "identify"):
            return refuse("cio_relationships", "cio_relationships must be a list of relationships")
        for item in relationships:
            people = item.get("identifiers") if isinstance(item, dict) else None
            if not isinstance(people, dict) or len(people) != 1 or next(iter(people)) not in ID_TYPES:
                return refuse("cio_relationships", "each relationship's identifiers hold exactly one of "
                                                   + ", ".join(ID_TYPES))
            problem = identifier_error(next(iter(people)), next(iter(people.values())))
            errors = _bag_errors("relationship_attributes", item.get("relationship_attributes") or {})
            if problem or errors:
                return refuse("cio_relationships", problem or "; ".join(errors))
    return None


def event_errors(name: Any, data: Any, timestamp: Any, event_id: Any) -> list[tuple[str, str]]:
    """(field, message) for everything wrong with an event."""
    errors = []
    if not isinstance(name, str) or not name.strip():
        errors.append(("name", "event name is required"))
    elif _size(name.strip()) > EVENT_NAME_LIMIT:
        errors.append(("name", f"event name is {_size(name.strip())} bytes; the limit is {EVENT_NAME_LIMIT}"))
    if data is not None and not isinstance(data, dict):
        errors.append(("data", "event data must be a JSON object"))
    elif data is not None and _size(data) > EVENT_DATA_LIMIT:
        errors.append(("data", f"event data is {_size(data)} bytes; the limit is {EVENT_DATA_LIMIT}"))
    if timestamp is not None and not _is_unix_seconds(timestamp):
        errors.append(("timestamp", f"timestamp must be a Unix timestamp in whole seconds, got {timestamp!r}"))
    if event_id is not None and (not isinstance(event_id, str) or not _ULID.match(event_id)):
        errors.append(("id", f"event id must be a ULID, got {event_id!r}"))
    return errors


def path_identifier(raw: str) -> tuple[str, str]:
    """How Customer.io reads {identifier}: `cio_<id>`, an email, or an id."""
    if raw.startswith("cio_"):
        return "cio_id", raw[4:]
    if "@" in raw:
        return "email", raw
    return "id", raw


def endpoint_label(method: str, raw_path: str) -> str:
    for pattern, template in _ENDPOINTS:
        if pattern.match(raw_path):
            return f"{method} {template}"
    return f"{method} {raw_path}"


# ----- the workspace --------------------------------------------------------------------------------------

class Workspace:
    """People (keyed by cio_id), their attributes and events, and segments. Not thread-safe itself."""

    def __init__(self) -> None:
        self.people: dict[str, dict[str, Any]] = {}
        self.by_id: dict[str, str] = {}
        self.segments: dict[int, dict[str, Any]] = {}
        self.event_ids: set[str] = set()
        self.next_cio = 1
        self.next_segment = 1
        self.objects: dict[str, dict[str, Any]] = {}   # "<object_type_id>:<object_id>"

    @classmethod
    def fresh(cls) -> "Workspace":
        workspace = cls()
        workspace.add_segment("All people (data-driven)", "Emulator demo segment", kind="dynamic")
        return workspace

    def find(self, kind: str, value: str) -> dict[str, Any] | None:
        if kind == "id":
            return self.people.get(self.by_id.get(value, ""))
        if kind == "cio_id":
            return self.people.get(value)
        if kind == "phone":
            return next((p for p in self.people.values() if p["attributes"].get("phone") == value), None)
        wanted = value.strip().lower()
        for person in self.people.values():
            if str(person["attributes"].get("email", "")).lower() == wanted:
                return person
        return None

    def _create(self, kind: str, value: str) -> dict[str, Any] | None:
        if kind == "cio_id":
            return None  # a cio_id is assigned by Customer.io, never chosen by a caller
        cio_id = f"{self.next_cio:08x}"
        self.next_cio += 1
        person = {"cio_id": cio_id, "id": value if kind == "id" else None, "attributes": {}, "events": []}
        if kind == "id":
            self.by_id[value] = cio_id
        else:
            person["attributes"][kind] = value   # email or phone
        self.people[cio_id] = person
        return person

    def identify(self, kind: str, value: str, attributes: dict[str, Any],
                 timestamp: int | None = None) -> str | None:
        """Apply one identify; returns why it was refused (the person would exceed a limit) or None.

        With an op `timestamp`, an attribute last set by a newer timestamped op keeps its value:
        the latest state wins whatever order the ops arrive in (ties apply)."""
        person = self.find(kind, value)
        if person is None:
            if attributes.get("_update") is True:
                return None  # `_update`: never create; a miss is not an error
            problem = held_attributes_error({kind} if kind in ("email", "phone") else set(), attributes)
            if problem:
                return problem
            person = self._create(kind, value)
            if person is None:
                return None
        stamps = person.setdefault("stamps", {})
        if timestamp is not None:
            attributes = {name: attribute for name, attribute in attributes.items()
                          if name in NOT_HELD or timestamp >= stamps.get(name, timestamp)}
        problem = held_attributes_error(set(person["attributes"]), attributes)
        if problem:
            return problem  # refused whole: nothing of this identify is applied
        new_id = attributes.get("id")
        if person["id"] is None and new_id is not None and str(new_id) not in self.by_id:
            person["id"] = str(new_id)
            self.by_id[person["id"]] = person["cio_id"]
        for name, attribute in attributes.items():
            if name in ("_update", "_timestamp", "id"):
                continue
            if timestamp is not None:
                stamps[name] = timestamp
            if attribute is None:
                person["attributes"].pop(name, None)
            else:
                person["attributes"][name] = attribute
        return None

    def track(self, kind: str, value: str, name: str, data: dict | None, timestamp: Any,
              event_id: str | None) -> str:
        if event_id and event_id.upper() in self.event_ids:
            return "duplicate"
        person = self.find(kind, value) or self._create(kind, value)
        if person is None:
            return "no such person"
        event = {"id": event_id, "name": name.strip(), "timestamp": timestamp, "data": data or {}}
        person["events"].append(event)
        if event_id:
            self.event_ids.add(event_id.upper())
        return "recorded"

    def delete(self, kind: str, value: str) -> None:
        person = self.find(kind, value)
        if person is None:
            return
        del self.people[person["cio_id"]]
        self.by_id.pop(person["id"] or "", None)
        for segment in self.segments.values():
            segment["members"].discard(person["cio_id"])
        for entity in self.objects.values():
            entity["relationships"].pop(person["cio_id"], None)

    def apply_object_op(self, op: dict[str, Any]) -> str | None:
        """Apply a valid object op; returns why it was refused (the per-object cap) or None."""
        identifiers, action = op["identifiers"], op["action"]
        key = f"{identifiers['object_type_id']}:{identifiers['object_id']}"
        if action == "delete":
            self.objects.pop(key, None)
            return None
        entity = self.objects.get(key)
        if action == "identify":
            # Objects: "Pass null or an empty string to remove an attribute".
            attributes = {name: (None if value == "" else value)
                          for name, value in (op.get("attributes") or {}).items()}
            held = set(entity["attributes"]) if entity else set()
            problem = held_attributes_error(held, attributes)
            if problem:
                return problem.replace("per person", "per object").replace("the person", "the object")
            if entity is None:
                entity = {"object_type_id": identifiers["object_type_id"], "object_id": str(identifiers["object_id"]),
                          "attributes": {}, "relationships": {}}
            after = {**entity["attributes"], **attributes}
            after = {name: value for name, value in after.items() if value is not None}
            if _size(after) > OBJECT_ATTRIBUTES_LIMIT:
                return (f"an object's attributes may total at most {OBJECT_ATTRIBUTES_LIMIT} bytes in all: "
                        f"this identify would make them {_size(after)}")
            entity["attributes"] = after
            self.objects[key] = entity
        if entity is None:
            return None   # relationships of an object that does not exist: nothing to change
        for item in op.get("cio_relationships") or []:
            kind, value = next(iter(item["identifiers"].items()))
            person = self.find(kind, str(value))
            if person is None:
                continue   # people who do not exist are ignored, as segment ids are
            if action == "delete_relationships":
                entity["relationships"].pop(person["cio_id"], None)
            else:
                entity["relationships"][person["cio_id"]] = dict(item.get("relationship_attributes") or {})
        return None

    def merge(self, primary: dict[str, Any], secondary: dict[str, Any], now: float) -> None:
        """Merge `secondary` into `primary` and delete it: attributes unset or empty on the primary,
        the last 30 days of events, manual segments. Either missing: nothing happens (as documented)."""
        if primary is secondary:
            return
        for name, value in secondary["attributes"].items():
            if primary["attributes"].get(name) in (None, ""):
                primary["attributes"][name] = value
        recent = now - 30 * 86400
        primary["events"] += [event for event in secondary["events"]
                              if not isinstance(event.get("timestamp"), (int, float)) or event["timestamp"] >= recent]
        for segment in self.segments.values():
            if segment["type"] == "manual" and secondary["cio_id"] in segment["members"]:
                segment["members"].add(primary["cio_id"])
        self.delete("cio_id", secondary["cio_id"])

    def add_segment(self, name: str, description: str, kind: str = "manual") -> dict[str, Any]:
        segment = {"id": self.next_segment, "name": name, "description": description, "type": kind,
                   "members": set()}
        self.segments[segment["id"]] = segment
        self.next_segment += 1
        return segment

    def change_membership(self, segment: dict[str, Any], id_type: str, ids: list[Any], add: bool) -> None:
        for value in ids:
            person = self.find(id_type, str(value))
            if person is None:
                continue  # ids that match nobody are silently ignored
            if add:
                segment["members"].add(person["cio_id"])
            else:
                segment["members"].discard(person["cio_id"])

    def members_of(self, segment: dict[str, Any]) -> list[dict[str, Any]]:
        people = [self.people[cio_id] for cio_id in segment["members"] if cio_id in self.people]
        return sorted(people, key=lambda person: (person["id"] or "", person["cio_id"]))

    @staticmethod
    def segment_json(segment: dict[str, Any]) -> dict[str, Any]:
        return {key: segment[key] for key in ("id", "name", "description", "type")}

    def inspect(self) -> dict[str, Any]:
        def key(person):
            return person["id"] if person["id"] is not None else f"cio_{person['cio_id']}"

        return {
            "people": {key(p): {"id": p["id"], "cio_id": p["cio_id"], "email": p["attributes"].get("email"),
                                "attributes": p["attributes"], "events": p["events"]}
                       for p in self.people.values()},
            "segments": {str(s["id"]): {**self.segment_json(s), "members": [key(p) for p in self.members_of(s)]}
                         for s in self.segments.values()},
            "objects": {name: {"object_type_id": o["object_type_id"], "object_id": o["object_id"],
                               "attributes": o["attributes"],
                               "relationships": sorted(key(self.people[cio]) for cio in o["relationships"]
                                                       if cio in self.people)}
                        for name, o in sorted(self.objects.items())},
        }

    def to_json(self) -> dict[str, Any]:
        return {"people": list(self.people.values()),
                "segments": [{**s, "members": sorted(s["members"])} for s in self.segments.values()],
                "event_ids": sorted(self.event_ids), "next_cio": self.next_cio, "next_segment": self.next_segment,
                "objects": self.objects}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Workspace":
        workspace = cls()
        for person in data.get("people", []):
            workspace.people[person["cio_id"]] = person
            if person.get("id") is not None:
                workspace.by_id[person["id"]] = person["cio_id"]
        for segment in data.get("segments", []):
            workspace.segments[int(segment["id"])] = {**segment, "members": set(segment["members"])}
        workspace.event_ids = set(data.get("event_ids", []))
        workspace.objects = data.get("objects", {})
        workspace.next_cio = data.get("next_cio", len(workspace.people) + 1)
        workspace.next_segment = data.get("next_segment", max(workspace.segments, default=0) + 1)
        return workspace


# ----- HTTP -------------------------------------------------------------------------------------------------

def _meta_error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"meta": {"error": message}}, status_code=status)


def _meta_errors(status: int, messages: list[str]) -> JSONResponse:
    return JSONResponse({"meta": {"errors": messages}}, status_code=status)


async def _read_json(request: Request) -> tuple[Any, Response | None]:
    raw = await request.body()
    try:
        return json.loads(raw or b"null"), None
    except ValueError:
        return None, _meta_error(400, "the request body is not valid JSON")


async def _drop_connection(send) -> None:
    """Close the TCP connection without an answer, as a failing proxy or server would."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is not None:  # uvicorn's own `send`: close the socket, then let it notice
        transport.close()
        await asyncio.sleep(0.01)
        return
    # Any other server: promise a body and stop; the server then closes the connection.
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"64")]})
    await send({"type": "http.response.body", "body": b"{", "more_body": True})


class _Window:
    """Sliding one-second window: admits at most `per_second` requests."""

    def __init__(self, per_second: float):
        self.per_second = per_second
        self.times: deque[float] = deque()

    def admit(self, now: float) -> bool:
        if self.per_second <= 0:
            return True
        while self.times and self.times[0] <= now - 1.0:
            self.times.popleft()
        if len(self.times) >= self.per_second:
            return False
        self.times.append(now)
        return True


class CustomerIoEmulator(Starlette):
    """A Starlette app whose __call__ first applies the fault knobs, rate limits and auth."""

    def __init__(self, options: EmulatorOptions, *, site_id: str, api_key: str, app_api_key: str,
                 retry_after: str | None = "1", phone_identifier: bool = False,
                 object_types: set[str] | None = None):
        self.options = options
        self.object_types = object_types if object_types is not None else {"1", "2"}
        self.phone_identifier = phone_identifier
        self.retry_after = retry_after
        self._basic = "Basic " + base64.b64encode(f"{site_id}:{api_key}".encode()).decode()
        self._bearer = f"Bearer {app_api_key}"
        self._lock = threading.Lock()
        self._rng = random.Random(options.seed)
        self._track_window = _Window(options.rate_limit)
        self._app_window = _Window(APP_API_PER_SECOND)
        self._stats: defaultdict[str, Counter] = defaultdict(Counter)
        self.state_file = Path(options.state_file) if options.state_file else None
        if self.state_file and self.state_file.exists():
            self.workspace = Workspace.from_json(json.loads(self.state_file.read_text()))
        else:
            self.workspace = Workspace.fresh()
        super().__init__(routes=[
            Route("/_emulator/state", self.state, methods=["GET"]),
            Route("/_emulator/stats", self.stats, methods=["GET"]),
            Route("/api/v1/customers/{rest:path}", self.customers, methods=["PUT", "POST", "DELETE"]),
            Route("/api/v1/segments/{segment_id}/add_customers", self.add_customers, methods=["POST"]),
            Route("/api/v1/merge_customers", self.merge_customers, methods=["POST"]),
            Route("/api/v1/segments/{segment_id}/remove_customers", self.remove_customers, methods=["POST"]),
            Route("/api/v2/batch", self.batch, methods=["POST"]),
            Route("/api/v2/entity", self.entity, methods=["POST"]),
            Route("/v1/segments", self.list_segments, methods=["GET"]),
            Route("/v1/segments", self.create_segment, methods=["POST"]),
            Route("/v1/segments/{segment_id}", self.get_segment, methods=["GET"]),
            Route("/v1/segments/{segment_id}/membership", self.membership, methods=["GET"]),
            Route("/v1/customers/{customer_id}/attributes", self.customer_attributes, methods=["GET"]),
            Route("/v1/customers/{customer_id}/segments", self.customer_segments, methods=["GET"]),
        ])

    # ----- faults, limits, auth, stats ---------------------------------------------------------------

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_emulator/"):
            await super().__call__(scope, receive, send)
            return
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1").split("?")[0]
        label = endpoint_label(scope["method"], raw_path)
        if self.options.latency_ms:
            await asyncio.sleep(self.options.latency_ms / 1000)
        fault = self._draw_fault()
        if fault == "drop_before":
            self._count(label, "dropped")
            await _drop_connection(send)
            return
        if isinstance(fault, int):
            self._count(label, fault)
            await _meta_error(fault, "emulated server error")(scope, receive, send)
            return
        app_api = raw_path.startswith("/v1/")
        with self._lock:
            admitted = (self._app_window if app_api else self._track_window).admit(time.monotonic())
        if not admitted:
            self._count(label, 429)
            headers = {"Retry-After": self.retry_after} if self.retry_after else None
            await JSONResponse({"meta": {"error": "rate limit exceeded"}}, status_code=429,
                               headers=headers)(scope, receive, send)
            return
        if not self._authorized(scope, app_api):
            self._count(label, 401)
            await _meta_error(401, "Unauthorized request")(scope, receive, send)
            return
        statuses: list[int] = []

        async def observe(message) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])
            if fault != "drop_after":
                await send(message)

        await super().__call__(scope, receive, observe)
        if fault == "drop_after":  # applied, but the client never hears so: it must resend safely
            self._count(label, "dropped_after_apply")
            await _drop_connection(send)
        else:
            self._count(label, statuses[0] if statuses else "none")

    def _draw_fault(self) -> str | int | None:
        if self.options.fail_rate <= 0:
            return None
        with self._lock:
            if self._rng.random() >= self.options.fail_rate:
                return None
            return self._rng.choice([500, 503, "drop_before", "drop_after"])

    def _authorized(self, scope, app_api: bool) -> bool:
        headers = dict(scope["headers"])
        given = headers.get(b"authorization", b"").decode("latin-1").strip()
        if app_api:
            return given == self._bearer
        if not given.lower().startswith("basic "):
            return False
        try:  # compare decoded credentials so that any valid base64 spelling is accepted
            decoded = base64.b64decode(given[6:].strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        return decoded == base64.b64decode(self._basic[6:])

    def _count(self, label: str, status: int | str) -> None:
        with self._lock:
            self._stats[label][str(status)] += 1

    def _save(self) -> None:
        """Persist after a change (caller holds the lock); write-then-rename so a crash leaves a whole file."""
        if not self.state_file:
            return
        temporary = self.state_file.with_suffix(self.state_file.suffix + ".tmp")
        temporary.write_text(json.dumps(self.workspace.to_json()))
        os.replace(temporary, self.state_file)

    # ----- inspection ---------------------------------------------------------------------------------

    async def state(self, request: Request) -> Response:
        with self._lock:
            return JSONResponse(self.workspace.inspect())

    async def stats(self, request: Request) -> Response:
        with self._lock:
            requests = {label: dict(counts) for label, counts in sorted(self._stats.items())}
        return JSONResponse({"requests": requests, "total": sum(sum(c.values()) for c in requests.values())})

    # ----- Track API v1 -------------------------------------------------------------------------------

    async def customers(self, request: Request) -> Response:
        # Split the raw path so that an encoded "/" inside an identifier stays part of it.
        raw = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
        parts = [unquote(part) for part in raw[len("/api/v1/customers/"):].split("/")]
        method = request.method
        if method in ("PUT", "DELETE") and len(parts) == 1:
            problem = identifier_error("identifier", parts[0])
            if problem:
                return _meta_error(400, problem)
            kind, value = path_identifier(parts[0])
            if method == "DELETE":
                with self._lock:
                    self.workspace.delete(kind, value)
                    self._save()
                return JSONResponse({})
            body, error = await _read_json(request)
            if error:
                return error
            errors = attribute_errors(body)
            if errors:
                return _meta_errors(400, errors)
            with self._lock:
                problem = self.workspace.identify(kind, value, body)
                self._save()
            return _meta_errors(400, [problem]) if problem else JSONResponse({})
        if method == "POST" and len(parts) == 2 and parts[1] == "events":
            problem = identifier_error("identifier", parts[0])
            if problem:
                return _meta_error(400, problem)
            body, error = await _read_json(request)
            if error:
                return error
            if not isinstance(body, dict):
                return _meta_error(400, "the event body must be a JSON object")
            errors = event_errors(body.get("name"), body.get("data"), body.get("timestamp"), body.get("id"))
            if errors:
                return _meta_errors(400, [message for _, message in errors])
            kind, value = path_identifier(parts[0])
            with self._lock:
                self.workspace.track(kind, value, body["name"], body.get("data"), body.get("timestamp"),
                                     body.get("id"))
                self._save()
            return JSONResponse({})
        return _meta_error(404, "not found")

    async def merge_customers(self, request: Request) -> Response:
        body, error = await _read_json(request)
        if error:
            return error
        people = []
        for role in ("primary", "secondary"):
            given = body.get(role) if isinstance(body, dict) else None
            if not isinstance(given, dict) or len(given) != 1 or next(iter(given)) not in ID_TYPES:
                return _meta_error(400, f"{role} must hold exactly one of {', '.join(ID_TYPES)}")
            kind, value = next(iter(given.items()))
            problem = identifier_error(f"{role}.{kind}", value)
            if problem:
                return _meta_error(400, problem)
            people.append((kind, str(value)))
        with self._lock:
            primary, secondary = (self.workspace.find(kind, value) for kind, value in people)
            if primary is not None and secondary is not None:
                self.workspace.merge(primary, secondary, time.time())
                self._save()
        return JSONResponse({})

    async def add_customers(self, request: Request) -> Response:
        return await self._membership_change(request, add=True)

    async def remove_customers(self, request: Request) -> Response:
        return await self._membership_change(request, add=False)

    async def _membership_change(self, request: Request, add: bool) -> Response:
        raw_id = request.path_params["segment_id"]
        if not re.fullmatch(r"\d+", raw_id):
            return _meta_error(400, f"segment_id must be an integer, got {raw_id!r}")
        id_type = request.query_params.get("id_type", "id")
        if id_type not in ID_TYPES:
            return _meta_error(400, f"id_type must be one of {', '.join(ID_TYPES)}, got {id_type!r}")
        body, error = await _read_json(request)
        if error:
            return error
        ids = body.get("ids") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not 1 <= len(ids) <= SEGMENT_IDS_LIMIT:
            count = len(ids) if isinstance(ids, list) else "no"
            return _meta_error(400, f"ids must be a list of 1 to {SEGMENT_IDS_LIMIT} values, got {count}")
        if any(isinstance(value, bool) or not isinstance(value, (str, int)) for value in ids):
            return _meta_error(400, "ids must be strings")
        with self._lock:
            segment = self.workspace.segments.get(int(raw_id))
            if segment is None:
                return _meta_error(404, f"segment {raw_id} not found")
            if segment["type"] != "manual":
                return _meta_error(400, f"segment {raw_id} is not a manual segment")
            self.workspace.change_membership(segment, id_type, ids, add)
            self._save()
        return JSONResponse({})

    # ----- Track API v2 -------------------------------------------------------------------------------

    def _op_error(self, op: Any) -> dict[str, str] | None:
        """Why one v2 op is refused, as a 207/400 error entry (without batch_index), or None."""
        if not isinstance(op, dict):
            return {"reason": "invalid", "field": "", "message": "an op must be a JSON object"}
        if _size(op) > OP_LIMIT:
            return {"reason": "too_large", "field": "", "message": f"op is {_size(op)} bytes; limit {OP_LIMIT}"}
        if op.get("type") == "object":
            return object_op_error(op, self.object_types)
        if op.get("type") != "person":
            return {"reason": "unsupported", "field": "type",
                    "message": f"type {op.get('type')!r}: the emulator implements person and object ops"}
        identifiers = op.get("identifiers")
        kinds = ID_TYPES + ("phone",) if self.phone_identifier else ID_TYPES
        if not isinstance(identifiers, dict) or len(identifiers) != 1 or next(iter(identifiers)) not in kinds:
            phone = ("" if self.phone_identifier else
                     " (phone only when the workspace has phone as an identifier)")
            return {"reason": "invalid", "field": "identifiers",
                    "message": f"identifiers must hold exactly one of {', '.join(kinds)}{phone}"}
        problem = identifier_error(next(iter(identifiers)), next(iter(identifiers.values())))
        if not problem and "phone" in identifiers and not E164.match(str(identifiers["phone"])):
            problem = "phone must be in E.164 format: a leading + followed by up to 15 digits"
        if problem:
            return {"reason": "invalid", "field": "identifiers", "message": problem}
        action = op.get("action")
        if action == "identify":
            if "timestamp" in op and not _is_unix_seconds(op["timestamp"]):
                return {"reason": "invalid", "field": "timestamp",
                        "message": f"timestamp must be a Unix timestamp in whole seconds, got {op['timestamp']!r}"}
            errors = attribute_errors(op.get("attributes") or {})
            if errors:
                return {"reason": "invalid", "field": "attributes", "message": "; ".join(errors)}
        elif action == "event":
            errors = event_errors(op.get("name"), op.get("attributes"), op.get("timestamp"), op.get("id"))
            if errors:
                field = "attributes" if errors[0][0] == "data" else errors[0][0]
                return {"reason": "invalid", "field": field, "message": "; ".join(m for _, m in errors)}
        elif action != "delete":
            return {"reason": "unsupported", "field": "action",
                    "message": f"action {action!r}: the emulator implements identify, event, delete"}
        return None

    def _apply_op(self, op: dict[str, Any]) -> dict[str, str] | None:
        """Apply a valid op; returns an error entry when the workspace refuses it (a per-person limit)."""
        if op["type"] == "object":
            problem = self.workspace.apply_object_op(op)
            return {"reason": "invalid", "field": "attributes", "message": problem} if problem else None
        kind, value = next(iter(op["identifiers"].items()))
        value = str(value)
        if op["action"] == "identify":
            problem = self.workspace.identify(kind, value, op.get("attributes") or {}, op.get("timestamp"))
            if problem:
                return {"reason": "invalid", "field": "attributes", "message": problem}
        elif op["action"] == "event":
            self.workspace.track(kind, value, op["name"], op.get("attributes"), op.get("timestamp"), op.get("id"))
        else:
            self.workspace.delete(kind, value)
        return None

    async def batch(self, request: Request) -> Response:
        raw = await request.body()
        if len(raw) > BATCH_REQUEST_LIMIT:
            return _meta_error(400, f"request is {len(raw)} bytes; a batch may be at most {BATCH_REQUEST_LIMIT}")
        body, error = await _read_json(request)
        if error:
            return error
        ops = body.get("batch") if isinstance(body, dict) else None
        if not isinstance(ops, list) or not ops:
            return _meta_error(400, "the body must be {\"batch\": [op, ...]} with at least one op")
        errors = []
        with self._lock:
            for index, op in enumerate(ops):
                problem = self._op_error(op) or self._apply_op(op)
                if problem:
                    errors.append({"batch_index": index, **problem})
            self._save()
        return JSONResponse({"errors": errors}, status_code=207) if errors else JSONResponse({})

    async def entity(self, request: Request) -> Response:
        raw = await request.body()
        if len(raw) > OP_LIMIT:
            return _meta_error(400, f"request is {len(raw)} bytes; an entity op may be at most {OP_LIMIT}")
        op, error = await _read_json(request)
        if error:
            return error
        problem = self._op_error(op)
        if problem:
            return JSONResponse({"errors": [problem]}, status_code=400)
        with self._lock:
            refused = self._apply_op(op)
            self._save()
        return JSONResponse({"errors": [refused]}, status_code=400) if refused else JSONResponse({})

    # ----- App API: segments --------------------------------------------------------------------------

    async def list_segments(self, request: Request) -> Response:
        with self._lock:
            segments = [Workspace.segment_json(s) for s in self.workspace.segments.values()]
        return JSONResponse({"segments": segments})

    async def create_segment(self, request: Request) -> Response:
        body, error = await _read_json(request)
        if error:
            return error
        segment = body.get("segment") if isinstance(body, dict) else None
        name = segment.get("name") if isinstance(segment, dict) else None
        if not isinstance(name, str) or not name.strip():
            return _meta_error(400, "segment.name is required")
        with self._lock:
            created = self.workspace.add_segment(name, str(segment.get("description") or ""))
            self._save()
            return JSONResponse({"segment": Workspace.segment_json(created)})

    def _segment_or_error(self, raw_id: str) -> tuple[dict[str, Any] | None, Response | None]:
        if not re.fullmatch(r"\d+", raw_id):
            return None, _meta_error(400, f"segment_id must be an integer, got {raw_id!r}")
        segment = self.workspace.segments.get(int(raw_id))
        return (segment, None) if segment else (None, _meta_error(404, f"segment {raw_id} not found"))

    async def get_segment(self, request: Request) -> Response:
        with self._lock:
            segment, error = self._segment_or_error(request.path_params["segment_id"])
            return error or JSONResponse({"segment": Workspace.segment_json(segment)})

    async def membership(self, request: Request) -> Response:
        start = request.query_params.get("start") or "0"
        limit = request.query_params.get("limit") or str(MEMBERSHIP_DEFAULT_LIMIT)
        if not start.isdigit():
            return _meta_error(400, f"start {start!r} is not a token this endpoint returned")
        if not limit.isdigit() or not 1 <= int(limit) <= MEMBERSHIP_MAX_LIMIT:
            return _meta_error(400, f"limit must be 1..{MEMBERSHIP_MAX_LIMIT}")
        offset, limit_n = int(start), int(limit)
        with self._lock:
            segment, error = self._segment_or_error(request.path_params["segment_id"])
            if error:
                return error
            members = self.workspace.members_of(segment)
        page = members[offset:offset + limit_n]
        following = offset + limit_n
        return JSONResponse({
            "identifiers": [{"id": p["id"] or "", "email": p["attributes"].get("email"), "cio_id": p["cio_id"]}
                            for p in page],
            "ids": [p["id"] or "" for p in page],
            "next": str(following) if following < len(members) else "",
        })

    # ----- App API: one person (customerio-node APIClient.getAttributes; App API "Get a person's
    # segments"): GET /v1/customers/{id}/attributes|segments?id_type=id|email|cio_id, 404 if unknown.

    def _person_or_error(self, request: Request) -> tuple[dict[str, Any] | None, Response | None]:
        id_type = request.query_params.get("id_type", "id")
        if id_type not in ID_TYPES:
            return None, _meta_error(400, f"id_type must be one of {', '.join(ID_TYPES)}")
        person = self.workspace.find(id_type, unquote(request.path_params["customer_id"]))
        return (person, None) if person else (None, _meta_error(404, "Customer not found"))

    async def customer_attributes(self, request: Request) -> Response:
        with self._lock:
            person, error = self._person_or_error(request)
            if error:
                return error
            return JSONResponse({"customer": {
                "id": person["id"], "identifiers": {"id": person["id"], "email": person["attributes"].get("email"),
                                                    "cio_id": person["cio_id"]},
                "attributes": dict(person["attributes"]), "timestamps": {}, "unsubscribed": False, "devices": []}})

    async def customer_segments(self, request: Request) -> Response:
        with self._lock:
            person, error = self._person_or_error(request)
            if error:
                return error
            segments = [Workspace.segment_json(segment) for segment in self.workspace.segments.values()
                        if person["cio_id"] in segment["members"]]
        return JSONResponse({"segments": segments})


def create_app(options: EmulatorOptions | None = None, *, retry_after: str | None = "1",
               env: dict[str, str] | None = None) -> CustomerIoEmulator:
    """The emulator as an ASGI (Starlette) app. `retry_after=None` answers 429 without Retry-After."""
    env = os.environ if env is None else env
    return CustomerIoEmulator(
        options or EmulatorOptions(),
        site_id=env.get("CUSTOMERIO_EMULATOR_SITE_ID") or "demo-site",
        api_key=env.get("CUSTOMERIO_EMULATOR_API_KEY") or "demo-key",
        app_api_key=env.get("CUSTOMERIO_EMULATOR_APP_API_KEY") or "demo-app-key",
        retry_after=retry_after,
        phone_identifier=(env.get("CUSTOMERIO_EMULATOR_PHONE_IDENTIFIER") or "").strip().lower() in ("1", "true", "yes"),
        object_types={part.strip() for part in (env.get("CUSTOMERIO_EMULATOR_OBJECT_TYPES") or "1,2").split(",")
                      if part.strip()},
    )
