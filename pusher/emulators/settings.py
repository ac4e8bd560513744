"""The pusher's settings for talking to the local emulators (the demo and the end-to-end tests)."""

from __future__ import annotations

# The emulators' default credentials (each can be changed through the emulator's environment).
DEMO_CREDENTIALS = {
    "CUSTOMERIO_SITE_ID": "demo-site",
    "CUSTOMERIO_API_KEY": "demo-key",
    "CUSTOMERIO_APP_API_KEY": "demo-app-key",
    "MSADS_DEVELOPER_TOKEN": "demo-developer-token",
    "MSADS_CLIENT_ID": "demo-client",
    "MSADS_REFRESH_TOKEN": "demo-refresh-token",
    "MSADS_CUSTOMER_ID": "1000",
    "MSADS_ACCOUNT_ID": "2000",
}


def emulator_env(cio_url: str, msads_url: str, token_file: str,
                 credentials: dict[str, str] | None = None) -> dict[str, str]:
    """Environment variables that point both destinations at the emulators."""
    return {
        **DEMO_CREDENTIALS,
        **(credentials or {}),
        "CUSTOMERIO_TRACK_URL": cio_url,
        "CUSTOMERIO_APP_URL": cio_url,
        "MSADS_BULK_URL": msads_url,
        "MSADS_CAMPAIGN_URL": msads_url,
        "MSADS_TOKEN_URL": f"{msads_url}/common/oauth2/v2.0/token",
        "MSADS_TOKEN_FILE": token_file,
        "MSADS_REQUESTS_PER_SECOND": "50",  # the emulator does not throttle; Microsoft does (default 2)
        "MSADS_POLL_SECONDS": "0.2",
    }
