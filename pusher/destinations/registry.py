"""destination kind -> a Destination built from the environment.

Each destination module is imported only when a sync needs it, so one missing or broken
module never stops syncs to the others.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Callable, Mapping

from pusher.destinations.base import Destination
from pusher.errors import ConfigError

# kind -> (module, class); each class offers from_env(env).
BUILTIN = {
    "file": ("pusher.destinations.file", "FileDestination"),
    "customerio": ("pusher.destinations.customerio", "CustomerIoDestination"),
    "microsoft_ads": ("pusher.destinations.microsoft_ads", "MicrosoftAdsDestination"),
}

Factory = Callable[[Mapping[str, str]], Destination]


def destination_class(kind: str) -> type[Destination]:
    if kind not in BUILTIN:
        raise ConfigError(f"unknown destination {kind!r} (known: {', '.join(BUILTIN)})")
    module_name, class_name = BUILTIN[kind]
    try:
        module = importlib.import_module(module_name)
        return getattr(module, class_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"destination {kind} is not available ({module_name}.{class_name}: {exc})") from exc


def build(kind: str, env: Mapping[str, str] | None = None, project_dir: Path | None = None) -> Destination:
    return destination_class(kind).from_settings(os.environ if env is None else env, project_dir)
