"""One base exception; the CLI alone turns these into messages and exit codes.

Exit codes (documented in the README):
  0 success · 3 some rows rejected · 4 a guard stopped the run ·
  5 configuration or input error · 6 destination unreachable · 1 unexpected bug ·
  7 (`pusher status --check` only) a sync is late for its cadence
"""

from __future__ import annotations

import base64
import threading
from urllib.parse import quote, quote_plus

EXIT_OK = 0
EXIT_ROWS_REJECTED = 3
EXIT_GUARD_STOPPED = 4
EXIT_CONFIG_ERROR = 5
EXIT_DESTINATION_UNREACHABLE = 6
EXIT_SYNC_LATE = 7              # `pusher status --check`: a sync has not succeeded within its cadence

_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def encodings(value: str) -> set[str]:
    """The forms a credential takes on the wire and in echoed error bodies: raw, URL-encoded
    (a query string or form body) and base64 (as in a header)."""
    b64 = base64.b64encode(value.encode()).decode()
    return {value, quote(value, safe=""), quote_plus(value), b64, b64.rstrip("=")}


def register_secret(value: str | None) -> None:
    """Remember a credential so that redact() blanks it, in every encoding, wherever it would be printed."""
    if value and len(value) >= 4:
        with _secrets_lock:
            _secrets.update(form for form in encodings(value) if len(form) >= 4)


def register_basic_auth(user: str, password: str | None) -> None:
    """An HTTP Basic credential: the password, and the header's base64 of `user:password`."""
    if password:
        register_secret(password)
        register_secret(f"{user}:{password}")


def redact(text: str) -> str:
    with _secrets_lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        text = text.replace(secret, "***")
    return text


class PusherError(Exception):
    exit_code = 1

    def __init__(self, message: str):
        super().__init__(redact(message))


class ConfigError(PusherError):
    """A sync definition, setting or credential is wrong; fix the config and rerun."""

    exit_code = EXIT_CONFIG_ERROR


class InputError(PusherError):
    """Rows from the warehouse are malformed (NULL/duplicate key, bad hash); nothing was sent for that sync."""

    exit_code = EXIT_CONFIG_ERROR


class DestinationAuthError(ConfigError):
    """The destination refused our credentials (401/403, invalid_grant)."""


class GuardStopped(PusherError):
    """A safety guard refused to run a sync; rerun with --override GUARD (or --force) once you
    have checked why."""

    exit_code = EXIT_GUARD_STOPPED


class DestinationUnavailable(PusherError):
    """The destination could not be reached or kept failing after retries; rerun later, nothing is lost."""

    exit_code = EXIT_DESTINATION_UNREACHABLE


class DestinationRequestError(PusherError):
    """The destination refused a whole request as malformed (HTTP 400 and the like)."""

    exit_code = EXIT_DESTINATION_UNREACHABLE
