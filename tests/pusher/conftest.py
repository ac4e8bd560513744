"""A small dbt-shaped project in tmp_path: a DuckDB file with audience/people/events tables
the test writes itself, a profiles.yml and a hand-written target/manifest.json (no dbt run)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pusher.config import load_project
from pusher.destinations.file import FileDestination, read_events, read_list, read_people
from pusher.ledger import table
from pusher.state import STATE_CATALOG
from pusher.sync import Engine
from pusher.warehouse import Warehouse, load_profile

DB = "warehouse"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def member(i: int, email: str | None = None) -> tuple[str, str | None, str | None]:
    return (f"c{i:06d}", sha(email or f"user{i}@example.com"), None)


SYNCS = {
    "sync_cart": ({"destination": "file", "kind": "audience", "list_name": "FILE__Cart_Abandon_0-1d__NoPurchase"},
                  "aud_cart"),
    "sync_people": ({"destination": "file", "kind": "people"}, "cio_people"),
    "sync_events": ({"destination": "file", "kind": "events"}, "cio_events"),
}


AUDIENCE_COLUMNS = "customer_id, email_sha256, phone_sha256, audience_name, list_name, exclusivity_group, entered_at"
# What macros/member_fingerprint.sql writes into each audience model on DuckDB.
MODEL_FINGERPRINT = ("member_fingerprint bigint generated always as "
                     "(cast(hash(customer_id, email_sha256, phone_sha256) >> 1 as bigint)) virtual")


class Project:
    def __init__(self, root: Path, model_fingerprint: bool = False):
        self.root = root
        self.db = root / f"{DB}.duckdb"
        self.state = root / ".pusher" / "state.duckdb"    # the ledger's own file (pusher.state)
        self.out = root / "destination"
        self.env = {"PUSHER_FILE_DIR": str(self.out)}
        (root / "dbt_project.yml").write_text("name: proj\nprofile: proj\nconfig-version: 2\n")
        (root / "profiles.yml").write_text(
            "proj:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
            "      path: \"{{ env_var('TEST_DUCKDB', 'warehouse.duckdb') }}\"\n")
        self.metas = {name: dict(meta) for name, (meta, _) in SYNCS.items()}
        self.write_manifest()
        with duckdb.connect(str(self.db)) as conn:
            conn.execute("create table aud_cart (customer_id varchar, email_sha256 varchar, phone_sha256 varchar, "
                         "audience_name varchar, list_name varchar, exclusivity_group varchar, entered_at timestamp"
                         f"{', ' + MODEL_FINGERPRINT if model_fingerprint else ''})")
            conn.execute("create table cio_people (customer_id varchar, email varchar, first_name varchar, "
                         "loyalty_points integer, vip boolean, last_order_at timestamp)")
            conn.execute("create table cio_events (event_id varchar, customer_id varchar, event_name varchar, "
                         "occurred_at timestamp, order_total decimal(10,2))")

    def write_manifest(self, extra_exposures: dict[str, Any] | None = None) -> None:
        nodes = {f"model.proj.{model}": {"name": model, "alias": model, "database": DB, "schema": "main",
                                         "resource_type": "model"} for _, model in SYNCS.values()}
        nodes["model.proj.stg_store__customers"] = {"name": "stg_store__customers", "alias": "stg_store__customers",
                                                    "database": DB, "schema": "main", "resource_type": "model"}
        nodes["test.proj.not_null_stg_store__customers_customer_id.abc"] = {
            "name": "not_null_stg_store__customers_customer_id", "resource_type": "test",
            "attached_node": "model.proj.stg_store__customers",
            "depends_on": {"nodes": ["model.proj.stg_store__customers"]}}
        exposures = {f"exposure.proj.{name}": {"name": name, "meta": {"pusher": self.metas[name]},
                                               "depends_on": {"nodes": [f"model.proj.{model}"]}}
                     for name, (_, model) in SYNCS.items()}
        exposures.update(extra_exposures or {})
        parent_map = {f"model.proj.{model}": ["model.proj.stg_store__customers"] for _, model in SYNCS.values()}
        parent_map["model.proj.stg_store__customers"] = ["source.proj.store.customers"]
        target = self.root / "target"
        target.mkdir(exist_ok=True)
        (target / "manifest.json").write_text(json.dumps({"nodes": nodes, "exposures": exposures,
                                                          "parent_map": parent_map}))

    def set_meta(self, sync: str, **changes: Any) -> None:
        self.metas[sync].update(changes)
        self.write_manifest()

    # -- the warehouse ---------------------------------------------------------------------------
    def sql(self, statement: str, params: list[Any] | None = None) -> list[tuple]:
        """On the warehouse, with the ledger's state file attached as the pusher does."""
        self.state.parent.mkdir(exist_ok=True)
        with duckdb.connect(str(self.db)) as conn:
            conn.execute(f"attach '{self.state}' as {STATE_CATALOG}")
            return conn.execute(statement, params or []).fetchall()

    def lose_ledger(self) -> None:
        """What a fresh machine without the state file sees."""
        for path in (self.state, self.state.with_name(self.state.name + ".wal")):
            path.unlink(missing_ok=True)

    def set_audience(self, rows: list[tuple]) -> None:
        with duckdb.connect(str(self.db)) as conn:
            conn.execute("delete from aud_cart")
            if rows:
                conn.executemany(f"insert into aud_cart ({AUDIENCE_COLUMNS}) values (?, ?, ?, 'aud_cart', 'Cart', null, "
                                 "timestamp '2024-01-01')", [list(r) for r in rows])

    def set_audience_range(self, start: int, stop: int) -> None:
        """Members c{start}..c{stop-1} with the default email, in SQL (fast for big audiences)."""
        self.sql("delete from aud_cart")
        self.sql(f"insert into aud_cart ({AUDIENCE_COLUMNS}) select 'c' || lpad(cast(i as varchar), 6, '0'), "
                 "sha256('user' || cast(i as varchar) || '@example.com'), null, 'aud_cart', 'Cart', null, "
                 "timestamp '2024-01-01' from range(?, ?) t(i)", [start, stop])

    def audience(self) -> dict[str, tuple]:
        return {row[0]: (row[1], row[2]) for row in self.sql("select customer_id, email_sha256, phone_sha256 "
                                                             "from aud_cart")}

    def ledger(self, sync: str = "sync_cart") -> dict[str, tuple]:
        return {row[0]: (row[1], row[2]) for row in self.sql(
            f"select member_key, email_sha256, phone_sha256 from {table('members')} where sync = ?", [sync])}

    def batches(self, sync: str = "sync_cart") -> list[tuple]:
        return self.sql(f"select run_id, op, row_count, accepted, rejected from {table('batches')} where sync = ?", [sync])

    # -- the destination -------------------------------------------------------------------------
    def listed(self, name: str = "FILE__Cart_Abandon_0-1d__NoPurchase") -> dict[str, tuple]:
        return read_list(self.out, name)

    def people(self) -> dict[str, dict]:
        return read_people(self.out)

    def events(self) -> dict[str, dict]:
        return read_events(self.out)

    # -- running ---------------------------------------------------------------------------------
    def engine(self, wh: Warehouse, destination: FileDestination | None = None, **kwargs) -> Engine:
        project = load_project(self.root)
        dest = destination or FileDestination(self.out)
        return Engine(project, wh, env=self.env, build_destination=lambda kind: dest, **kwargs)

    def sync(self, select: list[str] | None = None, destination: FileDestination | None = None, **kwargs):
        wh = Warehouse.connect(load_profile(self.root, env={}))
        try:
            engine = self.engine(wh, destination, **kwargs)
            return engine.sync_all(engine.project.select(select or ["sync_cart"]))
        finally:
            wh.close()

    def plan(self, select: list[str] | None = None):
        wh = Warehouse.connect(load_profile(self.root, env={}))
        try:
            engine = self.engine(wh)
            return engine.plan_all(engine.project.select(select or ["sync_cart"]))
        finally:
            wh.close()


@pytest.fixture(params=["pusher_fingerprint", "model_fingerprint"])
def project(tmp_path: Path, request: pytest.FixtureRequest) -> Project:
    """Each test runs twice: on an audience without member_fingerprint (the pusher computes
    it) and on one that carries it, as dbt builds them."""
    return Project(tmp_path, model_fingerprint=request.param == "model_fingerprint")
