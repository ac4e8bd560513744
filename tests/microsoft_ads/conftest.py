"""Fixtures: a fresh Microsoft Advertising emulator on loopback per test, and a destination on it."""

from __future__ import annotations

from typing import Callable, Iterator

import pytest
from msads_helpers import Emulator, destination_env

from pusher.destinations.microsoft_ads import MicrosoftAdsDestination
from pusher.emulators.microsoft_ads import create_app
from pusher.emulators.options import EmulatorOptions
from pusher.emulators.server import running


@pytest.fixture
def start_emulator(monkeypatch) -> Iterator[Callable[..., Emulator]]:
    """start_emulator(fail_rate=..., env={...}) -> Emulator; stopped after the test."""
    stack = []

    def start(env: dict[str, str] | None = None, **options) -> Emulator:
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        app = create_app(EmulatorOptions(**options))
        ctx = running(app)
        base = ctx.__enter__()
        stack.append(ctx)
        return Emulator(base)

    yield start
    for ctx in reversed(stack):
        ctx.__exit__(None, None, None)


@pytest.fixture
def emulator(start_emulator) -> Emulator:
    return start_emulator()


@pytest.fixture
def make_destination(tmp_path) -> Iterator[Callable[..., MicrosoftAdsDestination]]:
    made: list[MicrosoftAdsDestination] = []

    def make(emulator: Emulator, **extra: str) -> MicrosoftAdsDestination:
        dest = MicrosoftAdsDestination.from_env(destination_env(emulator.base, tmp_path, **extra))
        made.append(dest)
        return dest

    yield make
    for dest in made:
        dest.close()
