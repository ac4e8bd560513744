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


class StorageError(PusherError):
    """The warehouse or the pusher's state file cannot be written (disk full, file too large,
    read-only place). Every batch acknowledged before was recorded; one acknowledged but not
    yet recorded is resent by the next run (adds, removes and identifies are idempotent)."""

    exit_code = EXIT_DESTINATION_UNREACHABLE


# errno values that mean "the disk, not the data": rerun once there is room (6), or fix the place (5).
_NO_ROOM = {"ENOSPC", "EDQUOT", "EFBIG"}
_NOT_WRITABLE = {"EROFS", "EACCES", "EPERM"}
_NO_ROOM_TEXT = ("no space left", "disk quota", "file too large")
_NOT_WRITABLE_TEXT = ("read-only file system", "permission denied", "operation not permitted")


def storage_error(exc: BaseException) -> StorageError | None:
    """A clear StorageError for an OSError or DuckDB I/O error about the disk; None otherwise."""
    import errno

    import duckdb

    if isinstance(exc, OSError):
        name = errno.errorcode.get(exc.errno or 0, "")
        reason = exc.strerror or str(exc)
        no_room, not_writable = name in _NO_ROOM, name in _NOT_WRITABLE
    elif isinstance(exc, duckdb.Error):   # IOException, or a TransactionException "Failed to commit: ..."
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        text = reason.lower()
        no_room = any(part in text for part in _NO_ROOM_TEXT)
        not_writable = any(part in text for part in _NOT_WRITABLE_TEXT)
    else:
        return None
    if not (no_room or not_writable):
        return None
    error = StorageError(f"cannot write the warehouse or the pusher's state file ({reason}). Every batch "
                         "acknowledged before this was recorded; anything sent but not recorded is resent by the "
                         "next run. " + ("Free disk space, then rerun." if no_room else
                                         "Make the warehouse and PUSHER_STATE_PATH writable, then rerun."))
    if not_writable and not no_room:
        error.exit_code = EXIT_CONFIG_ERROR
    return error


class DestinationUnavailable(PusherError):
    """The destination could not be reached or kept failing after retries; rerun later, nothing is lost."""

    exit_code = EXIT_DESTINATION_UNREACHABLE


class DestinationRequestError(PusherError):
    """The destination refused a whole request as malformed (HTTP 400 and the like)."""

    exit_code = EXIT_DESTINATION_UNREACHABLE
