"""Turn warehouse values into what destinations take: timestamps become Unix seconds."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Any


def unix_seconds(value: dt.datetime | dt.date) -> int:
    """Naive timestamps are UTC (the data contract); dates count from midnight UTC."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return int(value.timestamp())
    return int(dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc).timestamp())


def to_wire(value: Any) -> Any:
    """A JSON-safe value with the same meaning; None stays None."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, (dt.datetime, dt.date)):
        return unix_seconds(value)
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [to_wire(item) for item in value]
    if isinstance(value, dict):
        return {str(key): to_wire(item) for key, item in value.items()}
    return str(value)
