"""`pusher emulate customerio|microsoft-ads`: start a local emulator in the foreground."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from pusher.emulators.options import EmulatorOptions
from pusher.emulators.server import serve_forever

app = typer.Typer(help="Start a local emulator of a destination's public API.", no_args_is_help=True)

HOST = typer.Option("127.0.0.1", help="Address to listen on (loopback by default).")
RATE = typer.Option(0.0, "--rate-limit", help="Requests per second before answering 429 (0 = unlimited).")
FAIL = typer.Option(0.0, "--fail-rate", help="Share of requests answered with an injected failure (0..1).")
LATENCY = typer.Option(0, "--latency-ms", help="Delay added to every request, in milliseconds.")
SEED = typer.Option(0, "--seed", help="Seed for the injected failures, so runs repeat.")
STATE = typer.Option(None, "--state-file", help="Keep state in this JSON file across restarts.")


def _options(rate_limit, fail_rate, latency_ms, seed, state_file) -> EmulatorOptions:
    return EmulatorOptions(rate_limit=rate_limit, fail_rate=fail_rate, latency_ms=latency_ms,
                           seed=seed, state_file=state_file)


@app.command("customerio")
def customerio(port: int = typer.Option(8701, help="Port to listen on."), host: str = HOST,
               rate_limit: float = RATE, fail_rate: float = FAIL, latency_ms: int = LATENCY,
               seed: int = SEED, state_file: Optional[Path] = STATE) -> None:
    """Customer.io Track API (v1 + v2 batch) and the App API's segments."""
    from pusher.emulators.customerio import create_app

    serve_forever(create_app(_options(rate_limit, fail_rate, latency_ms, seed, state_file)), host, port)


@app.command("microsoft-ads")
def microsoft_ads(port: int = typer.Option(8702, help="Port to listen on."), host: str = HOST,
                  rate_limit: float = RATE, fail_rate: float = FAIL, latency_ms: int = LATENCY,
                  seed: int = SEED, state_file: Optional[Path] = STATE) -> None:
    """Microsoft Advertising OAuth token endpoint and Bulk API (Customer Match lists)."""
    from pusher.emulators.microsoft_ads import create_app

    serve_forever(create_app(_options(rate_limit, fail_rate, latency_ms, seed, state_file)), host, port)
