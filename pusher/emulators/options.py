"""Fault and persistence knobs shared by both emulators."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class EmulatorOptions:
    rate_limit: float = 0.0         # requests per second before 429 (0 = unlimited)
    fail_rate: float = 0.0          # share of requests answered with an injected failure
    latency_ms: int = 0             # added to every request
    seed: int = 0                   # seeds the failure injection so a run repeats
    state_file: Path | None = None  # persist state as JSON across restarts
