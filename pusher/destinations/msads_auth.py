"""OAuth refresh-token flow for Microsoft Advertising, with the rotated refresh token persisted.

Microsoft may answer a refresh with a new refresh token; the old one may stop working, so
the new one is written at once (atomically, mode 0600) to the token file and preferred over
MSADS_REFRESH_TOKEN on the next start. If the file's token answers `invalid_grant` (stale
file, user consented again and put a fresh token in the environment), the environment's
token is tried once before giving up.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import httpx

from pusher.errors import ConfigError, DestinationAuthError, DestinationRequestError, register_secret
from pusher.http import RateLimiter, RetryPolicy, send_with_retries

SCOPE = "https://ads.microsoft.com/msads.manage offline_access"   # production (MSADS_ENVIRONMENT)
TOKEN_PATH = "/common/oauth2/v2.0/token"
EXPIRY_MARGIN_SECONDS = 60


def token_endpoint(base_url: str) -> str:
    """MSADS_TOKEN_URL may be a base URL or the full token endpoint."""
    base = base_url.rstrip("/")
    return base if base.endswith("/token") else base + TOKEN_PATH


def write_secret_file(path: Path, value: str) -> None:
    """Replace `path` atomically with `value`, readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(value + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_writable(path: Path) -> None:
    """ConfigError unless `path` can be replaced the way write_secret_file does (a temporary
    file in its directory, renamed over it)."""
    try:
        if path.is_dir():
            raise IsADirectoryError(21, "it is a directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=path.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(
            f"MSADS_TOKEN_FILE {path} cannot be written ({exc.strerror or exc}); nothing was sent and the "
            "refresh token was not used. Point MSADS_TOKEN_FILE at a writable path (relative paths are "
            "read against the dbt project directory)") from None


def read_secret_file(path: Path) -> str | None:
    try:
        value = path.read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None                      # (an unusable path is refused by check_writable)
    return value or None


class TokenProvider:
    """Hands out a valid access token; refreshes when it expires or when asked (error 109)."""

    def __init__(self, client: httpx.Client, token_url: str, client_id: str, refresh_token: str,
                 token_file: Path, *, client_secret: str | None = None, policy: RetryPolicy,
                 limiter: RateLimiter | None = None, clock: Callable[[], float] = time.time,
                 scope: str = SCOPE):
        self._client = client
        self._url = token_endpoint(token_url)
        self._client_id = client_id
        self._client_secret = client_secret
        self._scope = scope
        self._env_token = refresh_token
        self._file = token_file
        self._policy = policy
        self._limiter = limiter
        self._clock = clock
        self._access: str | None = None
        self._checked_file = False
        self._expires_at = 0.0
        # Uploads run in parallel: one refresh at a time, so a rotated token is never used twice.
        self._lock = threading.RLock()
        register_secret(refresh_token)
        register_secret(client_secret)
        register_secret(read_secret_file(token_file))

    def access_token(self) -> str:
        with self._lock:
            if self._access is None or self._clock() >= self._expires_at - EXPIRY_MARGIN_SECONDS:
                self.refresh()
            assert self._access is not None
            return self._access

    def refresh(self) -> None:
        with self._lock:
            self._refresh()

    def _refresh(self) -> None:
        if not self._checked_file:
            check_writable(self._file)     # before a refresh token is spent, never after
            self._checked_file = True
        file_token = read_secret_file(self._file)
        candidates = [file_token] if file_token else []
        if self._env_token not in candidates:
            candidates.append(self._env_token)   # the env token is tried once if the file's fails
        problem = ""
        for token in candidates:
            answer = self._grant(token)
            if "access_token" in answer:
                self._accept(answer, token)
                return
            problem = f"{answer.get('error', 'unknown error')}: {answer.get('error_description', '')}"[:300]
            if answer.get("error") != "invalid_grant":
                break
        raise DestinationAuthError(
            f"Microsoft Advertising refused the refresh token ({problem}). Sign in and consent "
            "again, then put the new refresh token in MSADS_REFRESH_TOKEN")

    def _grant(self, refresh_token: str) -> dict:
        form = {"client_id": self._client_id, "grant_type": "refresh_token",
                "refresh_token": refresh_token, "scope": self._scope}
        if self._client_secret:
            form["client_secret"] = self._client_secret
        response = send_with_retries(self._client, "POST", self._url, policy=self._policy,
                                     limiter=self._limiter, what="Microsoft Advertising token refresh",
                                     data=form)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise DestinationRequestError(
                f"Microsoft Advertising token endpoint answered HTTP {response.status_code} without JSON")
        return answer

    def _accept(self, answer: dict, used_token: str) -> None:
        self._access = str(answer["access_token"])
        register_secret(self._access)
        self._expires_at = self._clock() + float(answer.get("expires_in", 3600))
        rotated = answer.get("refresh_token")
        if rotated:
            register_secret(rotated)
        new_token = rotated or used_token
        if new_token != read_secret_file(self._file):
            # Persist at once: a rotated token may be the only one that still works.
            try:
                write_secret_file(self._file, new_token)
            except OSError as exc:
                raise ConfigError(
                    f"MSADS_TOKEN_FILE {self._file}: the rotated refresh token could not be saved "
                    f"({exc.strerror or exc}); sign in and consent again, put the new refresh token in "
                    "MSADS_REFRESH_TOKEN and make the file writable") from None
