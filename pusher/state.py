"""Where the ledger lives: a DuckDB state file of its own, attached to the warehouse connection.

A rebuild of the warehouse from scratch (a fresh CI machine, `rm warehouse.duckdb`, a new
`dbt build`) must not lose what the destinations acknowledged, so the ledger is never in the
warehouse: it is `.pusher/state.duckdb` under the project (PUSHER_STATE_PATH to move it; a
relative path is taken from the project directory), on every engine. The file is ATTACHed to
the warehouse connection as the catalog `pusher_state`, so the diff still joins model and ledger
inside one DuckDB process, at the same speed (https://duckdb.org/docs/sql/statements/attach). On
PostgreSQL and Spark that connection is the local DuckDB copy of the synced models
(pusher.sources): one design for all engines, with transactions and deletes even where the
warehouse has none (plain Spark tables), and a ledger that can move between engines.
On an ephemeral machine, keep the file in a cache or volume (or PUSHER_STATE_PATH on persistent
storage).

DuckDB lets one transaction write to one attached database only (temp tables excepted):
every ledger transaction writes the state file alone; the warehouse is only read.

A ledger written by an older pusher into the warehouse (schema `pusher_ledger`) is copied
into the state file once, the first time the state file is created, and the move is noted
in the warehouse so that a later loss of the state file never brings the stale copy back.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from pusher.errors import ConfigError

if TYPE_CHECKING:
    from pusher.warehouse import Warehouse

STATE_CATALOG = "pusher_state"
LEDGER_SCHEMA = "pusher_ledger"
DEFAULT_STATE_PATH = ".pusher/state.duckdb"
MOVED_MARKER = "moved_to_state_file"   # a table left in the warehouse's old ledger schema


def state_path(project_dir: Path, env: Mapping[str, str] | None = None) -> Path:
    """PUSHER_STATE_PATH, or `.pusher/state.duckdb`; relative paths are taken from the project."""
    env = os.environ if env is None else env
    path = Path((env.get("PUSHER_STATE_PATH") or "").strip() or DEFAULT_STATE_PATH).expanduser()
    return path if path.is_absolute() else project_dir / path


def attach(wh: "Warehouse", path: Path | str) -> list[str]:
    """Attach the state file (created if missing) and move an old in-warehouse ledger into it.
    Returns notes for the user (empty unless something was moved)."""
    import duckdb

    target = str(path)
    if target != ":memory:":
        location = Path(target)
        try:
            location.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the directory of the pusher state file {location}: "
                              f"{exc.strerror or exc}; set PUSHER_STATE_PATH to a writable place") from exc
    try:
        wh.execute(f"attach '{target.replace(chr(39), chr(39) * 2)}' as {STATE_CATALOG}")
    except duckdb.Error as exc:
        raise ConfigError(f"cannot open the pusher state file {target}: {exc}; it holds what the destinations "
                          "acknowledged (PUSHER_STATE_PATH sets where it is)") from exc
    wh.execute(f'create schema if not exists {STATE_CATALOG}."{LEDGER_SCHEMA}"')
    return _move_warehouse_ledger(wh, target)


def _tables(wh: "Warehouse", catalog: str) -> list[str]:
    return [row[0] for row in wh.fetchall(
        "select table_name from information_schema.tables where table_catalog = ? and table_schema = ? "
        "and table_type = 'BASE TABLE'", (catalog, LEDGER_SCHEMA))]


def _move_warehouse_ledger(wh: "Warehouse", target: str) -> list[str]:
    if not wh.database or wh.database == STATE_CATALOG:
        return []
    old = _tables(wh, wh.database)
    if "members" not in old or MOVED_MARKER in old or _tables(wh, STATE_CATALOG):
        return []
    with wh.transaction():            # writes the state file only
        for name in old:
            wh.execute(f'create table {STATE_CATALOG}."{LEDGER_SCHEMA}"."{name}" as '
                       f'select * from "{wh.database}"."{LEDGER_SCHEMA}"."{name}"')
    # A second transaction (one database per transaction): the warehouse remembers the move.
    wh.execute(f'create table if not exists "{wh.database}"."{LEDGER_SCHEMA}"."{MOVED_MARKER}" '
               "(state_path varchar, moved_at timestamp)")
    wh.execute(f'insert into "{wh.database}"."{LEDGER_SCHEMA}"."{MOVED_MARKER}" values (?, now())', (target,))
    return [f"note: the ledger was copied from the warehouse (schema {LEDGER_SCHEMA}) into the state file "
            f"{target}, its home from now on, so that rebuilding the warehouse no longer loses it. The "
            f"warehouse copy is no longer read; drop it when you like (drop schema {LEDGER_SCHEMA} cascade)."]
