"""Sync definitions: every dbt exposure with `meta.pusher`, read from target/manifest.json.

One definition, reviewed in git next to the models, gives both the lineage (`dbt docs`)
and the pusher's configuration. Every error names the sync and the field.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from pusher import cadence
from pusher.errors import ConfigError

DESTINATION_PREFIXES = {"customerio": "CIO", "microsoft_ads": "MSADS", "file": "FILE"}
DESTINATION_KINDS = {
    "customerio": {"audience", "people", "events", "objects"},
    "microsoft_ads": {"audience"},
    "file": {"audience", "people", "events"},
}
KINDS = ("audience", "people", "events", "objects")
# No quotes, control characters or anything a destination could read as markup/path.
LIST_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+\-]*$")
SYNC_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_LIST_NAME = 128
KNOWN_FIELDS = {"destination", "kind", "list_name", "max_remove_share", "min_audience_size",
                "max_row_attempts", "batch_size", "cadence", "object_type_id"}


@dataclass(frozen=True)
class SyncDefinition:
    name: str                       # the exposure's name
    model: str                      # the model's name
    model_id: str                   # e.g. model.retention.aud_cart_abandon_0_1d
    relation: tuple[str | None, str, str]  # database (None on Spark), schema, identifier (alias)
    destination: str
    kind: str
    list_name: str | None = None
    max_remove_share: float = 0.2
    min_audience_size: int = 0
    max_row_attempts: int = 5
    batch_size: int | None = None
    cadence: str | None = None          # e.g. 15m, 1h, 1d (pusher.cadence)
    object_type_id: str | None = None   # objects syncs: the destination's object type ("1", "2", ...)
    cadence_seconds: int | None = None


@dataclass
class Project:
    project_dir: Path
    target_path: Path
    syncs: list[SyncDefinition]
    manifest: dict[str, Any] = field(repr=False)
    warnings: list[str] = field(default_factory=list)   # shown, not fatal (e.g. a cadence too slow)
    broken: dict[str, str] = field(default_factory=dict)  # malformed syncs: name -> their config error

    def broken_in(self, names: Iterable[str] | None) -> dict[str, str]:
        """The malformed syncs a selection names (all of them when it names none)."""
        names = [name for name in (names or []) if name]
        return {name: error for name, error in self.broken.items() if not names or name in names}

    @property
    def parent_map(self) -> dict[str, list[str]]:
        return self.manifest.get("parent_map") or {}

    def select(self, names: Iterable[str] | None) -> list[SyncDefinition]:
        names = [name for name in (names or []) if name]
        if not names:
            return list(self.syncs)
        chosen = [sync for sync in self.syncs if sync.name in names or sync.model in names]
        unknown = [name for name in names
                   if name not in self.broken and not any(name in (s.name, s.model) for s in self.syncs)]
        if unknown:
            known = ", ".join(sync.name for sync in self.syncs) or "none"
            raise ConfigError(f"--select {', '.join(unknown)}: no sync or model of that name (syncs: {known})")
        return chosen


def _number(sync: str, meta: Mapping[str, Any], key: str, default: Any, kind: type,
            low: float, high: float) -> Any:
    value = meta.get(key, default)
    if value is None and default is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        raise ConfigError(f"sync {sync}: meta.pusher.{key} must be {'an integer' if kind is int else 'a number'}, "
                          f"got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"sync {sync}: meta.pusher.{key} must be between {low:g} and {high:g}, got {value!r}")
    return kind(value)


def validate_pusher_meta(sync: str, meta: Any) -> dict[str, Any]:
    """Check one exposure's meta.pusher; return the cleaned settings."""
    if not SYNC_NAME_RE.match(sync or ""):
        raise ConfigError(f"sync {sync!r}: exposure names must be letters, digits and underscores")
    if not isinstance(meta, Mapping):
        raise ConfigError(f"sync {sync}: meta.pusher must be a mapping, got {type(meta).__name__}")
    unknown = sorted(set(meta) - KNOWN_FIELDS)
    if unknown:
        raise ConfigError(f"sync {sync}: unknown field meta.pusher.{unknown[0]} "
                          f"(known: {', '.join(sorted(KNOWN_FIELDS))})")
    destination = meta.get("destination")
    if destination not in DESTINATION_PREFIXES:
        raise ConfigError(f"sync {sync}: meta.pusher.destination must be one of "
                          f"{', '.join(DESTINATION_PREFIXES)}, got {destination!r}")
    kind = meta.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"sync {sync}: meta.pusher.kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if kind not in DESTINATION_KINDS[destination]:
        raise ConfigError(f"sync {sync}: meta.pusher.kind {kind!r} is not supported by {destination}")
    list_name = meta.get("list_name")
    if kind == "audience":
        prefix = DESTINATION_PREFIXES[destination] + "__"
        if not isinstance(list_name, str) or not list_name:
            raise ConfigError(f"sync {sync}: meta.pusher.list_name is required for audience syncs "
                              f"(e.g. {prefix}Cart_Abandon_0-1d__NoPurchase)")
        if len(list_name) > MAX_LIST_NAME:
            raise ConfigError(f"sync {sync}: meta.pusher.list_name is longer than {MAX_LIST_NAME} characters")
        if not LIST_NAME_RE.match(list_name):
            raise ConfigError(f"sync {sync}: meta.pusher.list_name {list_name!r} may only hold letters, "
                              "digits and _ . + - (no spaces, quotes or control characters)")
        if not list_name.startswith(prefix) or len(list_name) == len(prefix):
            raise ConfigError(f"sync {sync}: meta.pusher.list_name {list_name!r} must start with {prefix!r} "
                              f"for destination {destination}")
    elif list_name is not None:
        raise ConfigError(f"sync {sync}: meta.pusher.list_name only applies to audience syncs, not {kind}")
    return {
        "destination": destination,
        "kind": kind,
        "list_name": list_name,
        "max_remove_share": _number(sync, meta, "max_remove_share", 0.2, float, 0.0, 1.0),
        "min_audience_size": _number(sync, meta, "min_audience_size", 0, int, 0, 10**9),
        "max_row_attempts": _number(sync, meta, "max_row_attempts", 5, int, 1, 1000),
        "batch_size": _number(sync, meta, "batch_size", None, int, 1, 100_000),
        "cadence": meta.get("cadence"),
        "cadence_seconds": cadence.parse(sync, meta.get("cadence")),
        "object_type_id": _object_type_id(sync, kind, meta.get("object_type_id")),
    }


def _object_type_id(sync: str, kind: str, value: Any) -> str | None:
    """Customer.io object type ids are "string-formatted integers that begin at 1" (Track API)."""
    if kind != "objects":
        if value is not None:
            raise ConfigError(f"sync {sync}: meta.pusher.object_type_id only applies to objects syncs, not {kind}")
        return None
    text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"sync {sync}: meta.pusher.object_type_id must name the object type, a whole number "
                          f"from 1 as Customer.io shows it under Data & Integrations > Objects, got {value!r}")
    return str(int(text))


def syncs_from_manifest(manifest: Mapping[str, Any]) -> list[SyncDefinition]:
    """Every sync; the first malformed exposure raises its ConfigError."""
    syncs, broken = read_syncs(manifest)
    if broken:
        raise ConfigError(next(iter(broken.values())))
    return syncs


def read_syncs(manifest: Mapping[str, Any]) -> tuple[list[SyncDefinition], dict[str, str]]:
    """(the valid syncs, {name: error} of the malformed ones): one bad exposure stops only itself."""
    syncs: list[SyncDefinition] = []
    broken: dict[str, str] = {}
    for exposure_id, exposure in sorted((manifest.get("exposures") or {}).items()):
        meta = exposure.get("meta") or (exposure.get("config") or {}).get("meta") or {}
        if "pusher" not in meta:
            continue
        name = exposure.get("name") or exposure_id
        try:
            syncs.append(_sync_definition(manifest, name, exposure, meta["pusher"]))
        except ConfigError as exc:
            broken[name] = str(exc)
    owners: dict[tuple[str, str], str] = {}
    for sync in list(syncs):
        if sync.kind != "audience":
            continue
        slot = (sync.destination, sync.list_name)
        if slot in owners:
            broken[sync.name] = (f"sync {sync.name}: meta.pusher.list_name {sync.list_name} on {sync.destination} "
                                 f"is already written by sync {owners[slot]}; each list needs exactly one owner")
            syncs.remove(sync)
            continue
        owners[slot] = sync.name
    return syncs, broken


def _sync_definition(manifest: Mapping[str, Any], name: str, exposure: Mapping[str, Any],
                     pusher_meta: Any) -> SyncDefinition:
    nodes = manifest.get("nodes") or {}
    settings = validate_pusher_meta(name, pusher_meta)
    models = [node for node in (exposure.get("depends_on") or {}).get("nodes", [])
              if node.startswith("model.")]
    if len(models) != 1:
        raise ConfigError(f"sync {name}: depends_on must name exactly one model (ref('...')), "
                          f"found {len(models)}")
    node = nodes.get(models[0])
    if not node:
        raise ConfigError(f"sync {name}: model {models[0]} is not in the manifest; rerun `dbt parse`")
    relation = (node.get("database"), node.get("schema"), node.get("alias") or node.get("name"))
    if not all(relation[1:]):       # Spark's manifest has no database: the session's catalog
        raise ConfigError(f"sync {name}: model {models[0]} has no schema/alias in the manifest")
    return SyncDefinition(name=name, model=node.get("name"), model_id=models[0], relation=relation, **settings)


def resolve_target_path(project_dir: Path, target_path: Path | None = None,
                        env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    path = target_path or Path(env.get("DBT_TARGET_PATH") or "target")
    return path if path.is_absolute() else project_dir / path


def load_project(project_dir: Path, target_path: Path | None = None,
                 env: Mapping[str, str] | None = None) -> Project:
    resolved = resolve_target_path(project_dir, target_path, env)
    manifest_file = resolved / "manifest.json"
    if not manifest_file.exists():
        raise ConfigError(f"no {manifest_file}: run `dbt build` (or `dbt parse`) first so the pusher can "
                          "read the sync definitions (exposures with meta.pusher)")
    try:
        manifest = json.loads(manifest_file.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{manifest_file} is not valid JSON ({exc}); rerun `dbt parse`") from exc
    syncs, broken = read_syncs(manifest)
    return Project(project_dir=project_dir, target_path=resolved, syncs=syncs, manifest=manifest,
                   warnings=cadence.window_warnings(syncs), broken=broken)
