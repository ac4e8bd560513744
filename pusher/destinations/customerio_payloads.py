"""Pure Customer.io payload logic: v2 batch ops, local limit checks, request packing, error bodies.

No I/O here, so every rule is testable without a server. Limits follow the Track API reference's
"Customer limits" (https://docs.customer.io/api/track/): 150-byte ids and attribute names,
1000-byte values (a nested object or array counted as its compact JSON, the safe reading of a
limit the docs state per value), at most 300 attributes per identify call *and per person across calls* (so an
update is checked against what the ledger says the person already holds); where the docs leave
"KB" ambiguous we stay under both readings.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any, Iterable, Sequence

from pusher.destinations.base import Event, ObjectUpdate, PersonUpdate

MAX_ID_BYTES = 150
MAX_ATTRIBUTE_NAME_BYTES = 150
MAX_ATTRIBUTE_VALUE_BYTES = 1000
MAX_ATTRIBUTES = 300
MAX_OBJECT_ATTRIBUTES_BYTES = 100_000   # "Total attribute size | 100 Kilobytes" per object: under both readings
MAX_EVENT_NAME_BYTES = 100
MAX_EVENT_DATA_BYTES = 100_000
MAX_OP_BYTES = 32_000            # documented "32 KB": under both 32,000 and 32,768
MAX_REQUEST_BYTES = 500_000      # documented "500 KB": under both 500,000 and 512,000
RESERVED_ATTRIBUTES = frozenset({"_update", "_timestamp"})
NOT_HELD = frozenset({"_update", "_timestamp", "id"})   # sent, but not attributes a person holds

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_BATCH_OPEN, _BATCH_CLOSE = b'{"batch":[', b"]}"


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON, the exact bytes we send and measure."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def value_bytes(value: Any) -> int:
    """Size of an attribute value as Customer.io counts it: a string's bytes, else its JSON."""
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    return len(dumps(value))


def event_ulid(key: str, timestamp: int) -> str:
    """A ULID that is the same for the same event: 48 bits of milliseconds, 80 bits of hash(key).

    Resending an event therefore carries the same `id`, and Customer.io drops the repeat.
    """
    millis = int(timestamp) * 1000
    if not 0 <= millis < 2 ** 48:
        raise ValueError(f"event {key!r}: timestamp {timestamp} is outside the ULID range")
    randomness = int.from_bytes(hashlib.sha256(f"pusher-event:{key}".encode("utf-8")).digest()[:10], "big")
    number = (millis << 80) | randomness
    return "".join(_CROCKFORD[(number >> shift) & 31] for shift in range(125, -1, -5))


IDENTIFY_BY = ("id", "phone")
E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")   # "a leading + followed by up to 15 digits" (v2 identifiers.phone)


def identify_op(update: PersonUpdate, by: str = "id") -> dict[str, Any]:
    """A v2 identify. by="phone" (a workspace with phone as an identifier): the person is found by
    the row's phone, and a new one is given our customer_id as its `id`, so events and segments,
    which go by id, reach the same profile."""
    attributes = dict(update.attributes)
    if not update.is_new:
        attributes["_update"] = True  # the profile must already exist: never resurrect a deleted one
    if by == "phone":
        if update.is_new:
            attributes["id"] = update.key
        identifiers = {"phone": update.phone}
    else:
        identifiers = {"id": update.key}
    op = {"type": "person", "identifiers": identifiers, "action": "identify", "attributes": attributes}
    if update.timestamp is not None:
        op["timestamp"] = int(update.timestamp)   # orders rapid updates: the latest state wins
    return op


def phone_problem(update: PersonUpdate) -> str | None:
    """Why a person cannot be identified by phone (never quoting the phone itself)."""
    if not update.phone:
        return (f"person {update.key} has no phone, and CUSTOMERIO_IDENTIFIER=phone identifies people by "
                "phone: fill the model's `phone` column (E.164) or leave such people out of the model")
    if not E164.match(update.phone):
        return f"person {update.key}: phone is not in E.164 format (+ and up to 15 digits); fix it in the model"
    sent = [name for name in update.attributes if name not in RESERVED_ATTRIBUTES]
    if update.is_new and len(sent) + 1 > MAX_ATTRIBUTES:   # a new person's op also carries `id`
        return (f"person {update.key}: {len(sent)} attributes plus its id in one update; Customer.io "
                f"accepts at most {MAX_ATTRIBUTES}")
    if not update.is_new and "phone" in update.attributes:
        return (f"person {update.key}: phone changed, and Customer.io changes an identifier only through the "
                "person's cio_id; change it in Customer.io (or merge the two profiles), then rerun")
    return None


def object_ops(update: ObjectUpdate) -> list[dict[str, Any]]:
    """v2 ops for one object (OpenAPI `object_identify`, `object_delete_relationships`): an identify
    with the changed attributes and, when it relates to a person, `cio_relationships`; then a
    `delete_relationships` for a person it no longer relates to."""
    identifiers = {"object_type_id": update.object_type_id, "object_id": update.key}
    identify: dict[str, Any] = {"type": "object", "identifiers": identifiers, "action": "identify",
                                "attributes": dict(update.attributes)}
    if update.relate_to is not None:
        identify["cio_relationships"] = [{"identifiers": {"id": update.relate_to}}]
    ops = [identify]
    if update.unrelate_from is not None:
        ops.append({"type": "object", "identifiers": identifiers, "action": "delete_relationships",
                    "cio_relationships": [{"identifiers": {"id": update.unrelate_from}}]})
    return ops


def object_problem(update: ObjectUpdate) -> str | None:
    """Why Customer.io would surely refuse this object ("Object and relationship limits"), or None."""
    problem = id_problem("object id", update.key)
    if problem:
        return problem
    for person in (update.relate_to, update.unrelate_from):
        problem = id_problem(f"object {update.key}: related customer id", person) if person is not None else None
        if problem:
            return problem
    attributes = update.attributes
    if len(attributes) > MAX_ATTRIBUTES:
        return f"object {update.key}: {len(attributes)} attributes; Customer.io accepts at most {MAX_ATTRIBUTES}"
    holding = len(attributes_after(update.held, attributes))
    if holding > MAX_ATTRIBUTES and holding > len(update.held):
        return (f"object {update.key} would hold {holding} attributes in Customer.io, which keeps at most "
                f"{MAX_ATTRIBUTES} per object across calls ({len(update.held)} acknowledged before); remove "
                "attribute columns from the objects model, or delete attributes it no longer sends in Customer.io")
    for name, value in attributes.items():
        name_size = len(str(name).encode("utf-8"))
        if not name_size or name_size > MAX_ATTRIBUTE_NAME_BYTES:
            return f"object {update.key}: attribute name {name!r} is {name_size} bytes; allowed 1..150"
        problem = _value_problem(name, value)
        if problem:
            return f"object {update.key}: {problem}"
        if value_bytes(value) > MAX_ATTRIBUTE_VALUE_BYTES:
            return (f"object {update.key}: attribute {name!r} is {value_bytes(value)} bytes; Customer.io "
                    f"accepts at most {MAX_ATTRIBUTE_VALUE_BYTES} per value")
    try:
        total = len(dumps(attributes))
    except (TypeError, ValueError) as exc:
        return f"object {update.key}: attributes are not JSON-serialisable ({exc})"
    if total > MAX_OBJECT_ATTRIBUTES_BYTES:
        return f"object {update.key}: attributes are {total} bytes; Customer.io keeps at most 100 KB per object"
    return None


def event_op(event: Event) -> dict[str, Any]:
    return {"type": "person", "identifiers": {"id": event.customer_id}, "action": "event",
            "id": event_ulid(event.key, event.timestamp), "name": event.name,
            "timestamp": int(event.timestamp), "attributes": dict(event.data)}


def id_problem(what: str, value: str) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return f"{what} is empty"
    size = len(value.encode("utf-8"))
    if size > MAX_ID_BYTES:
        return f"{what} is {size} bytes; Customer.io accepts at most {MAX_ID_BYTES}"
    return None


def id_problems(what: str, values: Sequence[Any]) -> dict[int, str]:
    """id_problem of each value, by position, for the values that have one. A batch of a
    thousand ids usually has none: that is checked in C first (an id of at most a quarter of
    MAX_ID_BYTES characters fits in UTF-8; str.strip refuses what is not a string)."""
    try:
        if (min(map(len, map(str.strip, values)), default=1) and
                max(map(len, values), default=0) * 4 <= MAX_ID_BYTES):
            return {}
    except TypeError:
        pass
    return {index: problem for index, value in enumerate(values) if (problem := id_problem(what, value))}


def _value_problem(name: str, value: Any) -> str | None:
    """Strings, numbers, booleans, null, and objects/arrays of them (Customer.io takes nested JSON
    attribute values: https://docs.customer.io/journeys/json-in-segments)."""
    if value is None or isinstance(value, (str, bool, int)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"attribute {name!r} holds {value}, not a finite number"
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"attribute {name!r} has a non-string key {key!r}"
            problem = _value_problem(name, item)
            if problem:
                return problem
        return None
    if isinstance(value, list):
        return next((problem for item in value if (problem := _value_problem(name, item))), None)
    return f"attribute {name!r} is a {type(value).__name__}; send a string, number, boolean, object, array or null"


def attributes_after(held: Iterable[str], changes: dict[str, Any]) -> set[str]:
    """The attribute names a person holds once `changes` apply: held ones, plus new non-null ones,
    minus those cleared with null."""
    after = set(held) - NOT_HELD
    for name, value in changes.items():
        if name in NOT_HELD:
            continue
        if value is None:
            after.discard(name)
        else:
            after.add(name)
    return after


def person_problem(update: PersonUpdate) -> str | None:
    """Why Customer.io would surely refuse this identify, or None. Checked before sending."""
    problem = id_problem("customer id", update.key)
    if problem:
        return problem
    names = [name for name in update.attributes if name not in RESERVED_ATTRIBUTES]
    if len(names) > MAX_ATTRIBUTES:
        return f"{len(names)} attributes in one update; Customer.io accepts at most {MAX_ATTRIBUTES}"
    holding = len(attributes_after(update.held, update.attributes))
    if holding > MAX_ATTRIBUTES and holding > len(set(update.held) - NOT_HELD):
        return (f"person {update.key} would hold {holding} attributes in Customer.io, which keeps at most "
                f"{MAX_ATTRIBUTES} per person across calls ({len(update.held)} acknowledged before); nothing "
                "was sent for this person. Remove attribute columns from the people model, or delete "
                "attributes it no longer sends from the profiles in Customer.io, then rerun")
    for name in names:
        value = update.attributes[name]
        name_size = len(str(name).encode("utf-8"))
        if not name_size or name_size > MAX_ATTRIBUTE_NAME_BYTES:
            return f"attribute name {name!r} is {name_size} bytes; allowed 1..{MAX_ATTRIBUTE_NAME_BYTES}"
        problem = _value_problem(name, value)
        if problem:
            return problem
        size = value_bytes(value)
        if size > MAX_ATTRIBUTE_VALUE_BYTES:
            return (f"attribute {name!r} is {size} bytes; Customer.io accepts at most "
                    f"{MAX_ATTRIBUTE_VALUE_BYTES} per value, an object or array counted as its JSON "
                    "(shorten it in the model)")
    return None


def event_problem(event: Event) -> str | None:
    problem = id_problem("customer id", event.customer_id)
    if problem:
        return problem
    name = (event.name or "").strip()
    size = len(name.encode("utf-8"))
    if not size or size > MAX_EVENT_NAME_BYTES:
        return f"event name {event.name!r} is {size} bytes; allowed 1..{MAX_EVENT_NAME_BYTES}"
    if not 0 <= int(event.timestamp) * 1000 < 2 ** 48:
        return f"event timestamp {event.timestamp} is not a plausible Unix time in seconds"
    try:
        data_size = len(dumps(event.data))
    except (TypeError, ValueError) as exc:
        return f"event data is not JSON-serialisable ({exc})"
    if data_size > MAX_EVENT_DATA_BYTES:
        return f"event data is {data_size} bytes; Customer.io accepts at most {MAX_EVENT_DATA_BYTES}"
    return None


def encode_op(op: dict[str, Any]) -> tuple[bytes | None, str | None]:
    """The op's bytes, or a reason it cannot go in a batch (too big for one op)."""
    try:
        data = dumps(op)
    except (TypeError, ValueError) as exc:
        return None, f"payload is not JSON-serialisable ({exc})"
    if len(data) > MAX_OP_BYTES:
        return None, f"payload is {len(data)} bytes; a Customer.io batch op may be at most {MAX_OP_BYTES}"
    return data, None


def pack_batches(encoded: Iterable[tuple[str, bytes]],
                 max_request_bytes: int = MAX_REQUEST_BYTES) -> list[list[tuple[str, bytes]]]:
    """Group (key, op bytes) in order so that every `{"batch":[...]}` body stays under the limit."""
    batches: list[list[tuple[str, bytes]]] = []
    current: list[tuple[str, bytes]] = []
    size = len(_BATCH_OPEN) + len(_BATCH_CLOSE)
    for key, data in encoded:
        extra = len(data) + (1 if current else 0)  # the comma between ops
        if current and size + extra > max_request_bytes:
            batches.append(current)
            current, size, extra = [], len(_BATCH_OPEN) + len(_BATCH_CLOSE), len(data)
        current.append((key, data))
        size += extra
    if current:
        batches.append(current)
    return batches


def batch_body(ops: Sequence[bytes]) -> bytes:
    return _BATCH_OPEN + b",".join(ops) + _BATCH_CLOSE


def error_message(body: Any) -> str:
    """The human part of a Customer.io error body, whichever of its shapes it uses."""
    if not isinstance(body, dict):
        return str(body)[:300] if body else "no error detail"
    meta = body.get("meta")
    if isinstance(meta, dict):
        if meta.get("error"):
            return str(meta["error"])
        if isinstance(meta.get("errors"), list) and meta["errors"]:
            return "; ".join(str(item) for item in meta["errors"])
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        return "; ".join(_describe_op_error(item) for item in errors)
    return json.dumps(body)[:300]


def _describe_op_error(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    reason = item.get("reason") or "rejected"
    text = f"{reason}: {item.get('message') or 'no message'}"
    return f"{text} (field {item['field']})" if item.get("field") else text


def partial_rejections(body: Any, keys: Sequence[str]) -> dict[int, str]:
    """Map a 207 body's errors to {index in this batch: reason}; unreadable entries are skipped."""
    rejected: dict[int, str] = {}
    errors = body.get("errors") if isinstance(body, dict) else None
    for item in errors or []:
        if not isinstance(item, dict):
            continue
        index = item.get("batch_index")
        if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(keys):
            reason = _describe_op_error(item)
            rejected[index] = f"{rejected[index]}; {reason}" if index in rejected else reason
    return rejected
