"""A tiny dbt-shaped project for Customer.io syncs over real HTTP: a DuckDB file whose tables the
test writes, a profiles.yml and a hand-written target/manifest.json (no dbt run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb

from pusher.config import load_project
from pusher.emulators.settings import DEMO_CREDENTIALS
from pusher.sync import Engine, RunReport
from pusher.warehouse import Warehouse, load_profile

DB = "warehouse"


class CioProject:
    """syncs: {exposure name: (meta.pusher, model table)}; the tables are created by the test."""

    def __init__(self, root: Path, emulator_url: str, syncs: dict[str, tuple[dict[str, Any], str]],
                 env: dict[str, str] | None = None):
        self.root, self.db = root, root / f"{DB}.duckdb"
        self.env = {**DEMO_CREDENTIALS, "CUSTOMERIO_TRACK_URL": emulator_url, "CUSTOMERIO_APP_URL": emulator_url,
                    "CUSTOMERIO_RETRY_BASE_DELAY": "0.01", **(env or {})}
        (root / "dbt_project.yml").write_text("name: proj\nprofile: proj\nconfig-version: 2\n")
        (root / "profiles.yml").write_text(f"proj:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
                                           f"      path: '{self.db}'\n")
        nodes = {f"model.proj.{model}": {"name": model, "alias": model, "database": DB, "schema": "main",
                                         "resource_type": "model"} for _, model in syncs.values()}
        exposures = {f"exposure.proj.{name}": {"name": name, "meta": {"pusher": meta},
                                               "depends_on": {"nodes": [f"model.proj.{model}"]}}
                     for name, (meta, model) in syncs.items()}
        (root / "target").mkdir(exist_ok=True)
        (root / "target" / "manifest.json").write_text(json.dumps({"nodes": nodes, "exposures": exposures,
                                                                   "parent_map": {}}))

    def sql(self, statement: str, params: list[Any] | None = None) -> list[tuple]:
        with duckdb.connect(str(self.db)) as conn:
            return conn.execute(statement, params or []).fetchall()

    def sync(self, select: list[str]) -> RunReport:
        wh = Warehouse.connect(load_profile(self.root, env={}))
        try:
            engine = Engine(load_project(self.root), wh, env=self.env)
            try:
                return engine.sync_all(engine.project.select(select))
            finally:
                engine.close()
        finally:
            wh.close()
