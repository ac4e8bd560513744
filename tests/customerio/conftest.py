"""Fixtures: a Customer.io emulator served over real HTTP on loopback, and destinations pointed at it."""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import pytest
from cio_helpers import API_KEY, APP_API_KEY, SITE_ID, Emulator, fast_retries

from pusher.destinations.customerio import CustomerIoDestination
from pusher.emulators.customerio import create_app
from pusher.emulators.options import EmulatorOptions
from pusher.emulators.server import running
from pusher.http import RetryPolicy


@pytest.fixture
def start_emulator() -> Iterator[Callable[..., Emulator]]:
    """start_emulator(rate_limit=.., fail_rate=.., ...) -> Emulator, stopped after the test."""
    with contextlib.ExitStack() as stack:
        def start(retry_after: str | None = "1", env: dict[str, str] | None = None, **options) -> Emulator:
            app = create_app(EmulatorOptions(**options), retry_after=retry_after, env=env or {})
            emulator = Emulator(stack.enter_context(running(app)))
            stack.callback(emulator.close)
            return emulator

        yield start


@pytest.fixture
def emulator(start_emulator) -> Emulator:
    return start_emulator()


@pytest.fixture
def make_destination() -> Iterator[Callable[..., CustomerIoDestination]]:
    made: list[CustomerIoDestination] = []

    def make(emulator: Emulator, *, api_key: str = API_KEY, app_api_key: str | None = APP_API_KEY,
             retry: RetryPolicy | None = None, **kwargs) -> CustomerIoDestination:
        destination = CustomerIoDestination(SITE_ID, api_key, app_api_key, track_url=emulator.url,
                                            app_url=emulator.url, retry=retry or fast_retries(), **kwargs)
        made.append(destination)
        return destination

    yield make
    for destination in made:
        destination.close()
