"""The warehouse connection, found through the dbt profile and target like dbt itself does.

profiles.yml is rendered by dbt's own profile renderer, so every setting dbt accepts works
(env_var with as_number, as_bool..., DBT_ENV_SECRET_* secrets). DuckDB is opened directly (the
fast path). Any other engine (postgres, spark, or any type whose dbt adapter is installed) is opened
with the dbt adapter of its type and read into a local DuckDB copy by pusher.sources, the one module that knows the engine; the
pusher's SQL then runs on DuckDB everywhere. The ledger is never in the warehouse: it is the
pusher's own state file (pusher.state), attached to this connection; the warehouse is only read.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import yaml

from pusher.errors import ConfigError, register_secret
from pusher.profile_render import render_profile

COPY_PREFIX = "pusher-copy-"     # the local copy's temporary directory: pusher-copy-<pid>-<random>
LOCAL_CATALOG = "warehouse"   # the local copy's catalog when the manifest has no database (Spark)
SECRET_ENV_PREFIX = "DBT_ENV_SECRET_"
SEPARATOR, NULL_MARK = "\x1f", "\x1e"    # ASCII unit and record separators (strings_sql)
SECRET_SETTING_WORDS = ("password", "token", "secret", "key")   # profile settings never to print


def quote_ident(name: str) -> str:
    """Quote one identifier; embedded quotes are doubled so no name can break out."""
    if not name or "\x00" in name:
        raise ConfigError(f"invalid SQL identifier {name!r}")
    return '"' + name.replace('"', '""') + '"'


def qualified(*parts: str | None) -> str:
    return ".".join(quote_ident(part) for part in parts if part)


@dataclass(frozen=True)
class Profile:
    name: str
    target: str
    settings: dict[str, Any] = field(repr=False)    # may hold a password
    project_dir: Path


def read_project_profile_name(project_dir: Path) -> str:
    project_file = project_dir / "dbt_project.yml"
    if not project_file.exists():
        raise ConfigError(f"no dbt_project.yml in {project_dir}; pass --project-dir")
    data = yaml.safe_load(project_file.read_text()) or {}
    profile = data.get("profile")
    if not isinstance(profile, str) or not profile:
        raise ConfigError(f"{project_file}: `profile` is missing")
    return profile


def load_profile(project_dir: Path, profiles_dir: Path | None = None, target: str | None = None,
                 env: Mapping[str, str] | None = None) -> Profile:
    """The rendered target, read the way dbt reads it: dbt's own profile renderer, so every
    filter (as_number, as_bool, as_native...) and env_var() behaviour dbt accepts works here,
    DBT_ENV_SECRET_* variables included (their values are also kept out of every message).
    A DuckDB target whose Jinja is env_var() and filters only is rendered the same way without
    importing dbt (pusher.profile_render): that import costs about a second and 80 MB a run."""
    env = os.environ if env is None else env
    profiles_dir = profiles_dir or (Path(env["DBT_PROFILES_DIR"]) if env.get("DBT_PROFILES_DIR") else project_dir)
    profiles_file = profiles_dir / "profiles.yml"
    if not profiles_file.exists():
        raise ConfigError(f"no profiles.yml in {profiles_dir}; pass --profiles-dir or set DBT_PROFILES_DIR")
    name = read_project_profile_name(project_dir)
    text = profiles_file.read_text()
    profiles = yaml.safe_load(text) or {}
    if name not in profiles:
        raise ConfigError(f"{profiles_file}: profile {name!r} (from dbt_project.yml) is not defined")
    for key, value in env.items():
        if key.startswith(SECRET_ENV_PREFIX):
            register_secret(value)
    raw = profiles[name] or {}
    light = render_profile(raw, target or env.get("DBT_TARGET"), env)
    if light is not None and light[1] is None:
        raise ConfigError(f"{profiles_file}: the profile {name!r} has no target named {light[0]!r} in its outputs")
    if light is not None and light[1].get("type") == "duckdb":
        chosen, settings = light
    else:   # other engines import dbt for their adapter anyway; dbt renders what we cannot
        chosen, settings = _rendered_by_dbt(raw, name, target or env.get("DBT_TARGET"), env, profiles_file)
    for key, value in settings.items():
        if isinstance(value, str) and any(word in key.lower() for word in SECRET_SETTING_WORDS):
            register_secret(value)
    if not isinstance(settings.get("type"), str):
        raise ConfigError(f"{profiles_file}: target {chosen!r} has no `type`")
    return Profile(name=name, target=chosen, settings=settings, project_dir=project_dir)


def _rendered_by_dbt(raw: dict, name: str, target: str | None, env: Mapping[str, str],
                     profiles_file: Path) -> tuple[str, dict[str, Any]]:
    from dbt.config.profile import Profile as DbtProfile
    from dbt.config.renderer import ProfileRenderer
    from dbt_common.context import set_invocation_context
    from dbt_common.exceptions import DbtBaseException

    set_invocation_context(dict(env))      # dbt's env_var() reads the invocation's environment
    try:
        return DbtProfile.render_profile(raw, name, target, ProfileRenderer({}))
    except DbtBaseException as exc:
        raise ConfigError(f"{profiles_file}: {exc}") from exc


class Warehouse:
    """A thin wrapper: one connection for writes, cursors for streamed reads."""

    dialect = "duckdb"

    def __init__(self, connection: Any, database: str | None = None, scratch: Path | None = None):
        self._conn = connection
        self.database = database
        self.scratch = scratch           # the local copy of another engine's relations, deleted on close
        self.copied: dict[str, int] = {}   # rows copied per relation (other engines only)
        self.copy_seconds = 0.0
        self.notices: list[str] = []     # for the user, printed once by the CLI (e.g. a ledger moved)
        # DuckDB draws a progress bar on stderr for long queries; ours is the only one.
        connection.execute("set enable_progress_bar = false")
        # Bound the buffer pool: big joins spill to disk instead of growing RSS. 128 MB keeps a
        # 1M-member first sync under 300 MB peak and a 10M plan under 3 s (600 MB: 529 MB, 1.5 s).
        limit = os.environ.get("PUSHER_DUCKDB_MEMORY_LIMIT", "128MB")
        if limit:
            connection.execute(f"set memory_limit = '{limit.replace(chr(39), '')}'")
        connection.execute("set preserve_insertion_order = false")

    @classmethod
    def connect(cls, profile: Profile, env: Mapping[str, str] | None = None, project: Any = None,
                select: Sequence[str] | None = None) -> "Warehouse":
        """Open the profile's warehouse with the pusher's state file (the ledger) attached.
        Another engine than DuckDB is read into a local copy first (pusher.sources); `project`
        (default: read from the project directory) and `select` (--select; default all syncs)
        name the relations to copy."""
        import duckdb

        from pusher import state

        if profile.settings.get("type") != "duckdb":
            return cls._connect_copy(profile, env, project, select)
        path = str(profile.settings.get("path", ":memory:"))
        if path != ":memory:" and not path.startswith("md:"):
            full = Path(path)
            if not full.is_absolute():
                full = profile.project_dir / full
            if not full.exists():
                raise ConfigError(f"warehouse file {path} does not exist; run `dbt build` first")
            path = str(full)
        try:
            conn = duckdb.connect(path)
        except duckdb.Error as exc:
            raise ConfigError(f"cannot open the DuckDB warehouse {path}: {exc}") from exc
        wh = cls(conn, conn.execute("select current_database()").fetchone()[0])
        try:
            wh.notices += state.attach(wh, state.state_path(profile.project_dir, env))
        except BaseException:
            wh.close()
            raise
        return wh

    @classmethod
    def _connect_copy(cls, profile: Profile, env: Mapping[str, str] | None, project: Any,
                      select: Sequence[str] | None) -> "Warehouse":
        import duckdb

        from pusher import sources, state
        from pusher.config import load_project

        if project is None:
            project = load_project(profile.project_dir, env=env)
        source = sources.open_source(profile)
        _remove_abandoned_copies()
        scratch = Path(tempfile.mkdtemp(prefix=f"{COPY_PREFIX}{os.getpid()}-"))
        wh = None
        try:
            # The copy's catalog bears the manifest's database name, so its relations resolve unchanged.
            databases = sorted({sync.relation[0] for sync in project.syncs if sync.relation[0]})
            catalog = databases[0] if len(databases) == 1 else source.database or LOCAL_CATALOG
            if "/" in catalog or catalog.startswith("."):
                raise ConfigError(f"database name {catalog!r} cannot name the pusher's local copy")
            # A database file, not memory: under the pusher's memory limit DuckDB spills to disk. Its
            # name is its catalog's, the default of every cursor (a `use` would hold for one only).
            conn = duckdb.connect(str(scratch / f"{catalog}.duckdb"))
            conn.execute(f"set temp_directory = '{str(scratch / 'spill').replace(chr(39), '')}'")
            wh = cls(conn, catalog, scratch)
            started = time.monotonic()
            wh.copied = sources.copy_relations(source, wh, sources.relations_read_by(project, select),
                                               profile.settings.get("schema"))
            wh.copy_seconds = time.monotonic() - started
            wh.notices += state.attach(wh, state.state_path(profile.project_dir, env))
        except BaseException:
            if wh is not None:
                wh.close()
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        finally:
            source.close()
        return wh

    @classmethod
    def open_duckdb(cls, path: str | Path, state_path: str | Path = ":memory:") -> "Warehouse":
        import duckdb

        from pusher import state

        conn = duckdb.connect(str(path))
        wh = cls(conn, conn.execute("select current_database()").fetchone()[0])
        wh.notices += state.attach(wh, state_path)
        return wh

    # -- reads -------------------------------------------------------------------------
    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self._conn.execute(sql, list(params)).fetchall()

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple | None:
        return self._conn.execute(sql, list(params)).fetchone()

    def stream(self, sql: str, params: Sequence[Any] = (), size: int = 1000) -> Iterator[list[tuple]]:
        """Yield the result in lists of `size` rows, on its own cursor so that ledger writes
        between batches do not cancel it (the query keeps its snapshot)."""
        cursor = self._conn.cursor()
        try:
            cursor.execute(sql, list(params))
            while rows := cursor.fetchmany(size):
                yield rows
        finally:
            cursor.close()

    def column_types(self, relation_parts: Sequence[str]) -> dict[str, str]:
        """Column name -> upper-cased type name, in the relation's order."""
        cursor = self._conn.cursor()
        try:
            cursor.execute(f"select * from {qualified(*relation_parts)} limit 0")
            return {column[0]: str(column[1]).upper() for column in cursor.description}
        finally:
            cursor.close()

    def columns(self, relation_parts: Sequence[str]) -> list[str]:
        return list(self.column_types(relation_parts))

    def relation_exists(self, relation_parts: Sequence[str | None]) -> bool:
        database, schema, name = relation_parts
        database = database or self.database
        row = self.fetchone(
            "select count(*) from information_schema.tables "
            "where table_catalog = ? and table_schema = ? and table_name = ?",
            (database, schema, name))
        return bool(row and row[0])

    # -- writes ------------------------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._conn.execute(sql, list(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._conn.executemany(sql, [list(row) for row in rows])

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                    types: Sequence[str] | None = None) -> None:
        """Insert many rows in one statement: one array parameter per column, unnested in the
        warehouse (hundreds of times faster than executemany on DuckDB)."""
        if not rows:
            return
        types = types or ["varchar"] * len(columns)
        selects = ", ".join(f"unnest(cast(? as {kind}[]))" for kind in types)
        target = ", ".join(quote_ident(column) for column in columns)
        values = [list(column) for column in zip(*rows)]
        self._conn.execute(f"insert into {table} ({target}) select {selects}", values)

    def transaction(self) -> "_Transaction":
        return _Transaction(self._conn)

    # -- dialect helpers ---------------------------------------------------------------
    def strings_sql(self, values: Sequence[str | None]) -> tuple[str, Any]:
        """An expression unnesting one parameter into `values` (strings or None), in order, and
        that parameter. The values go as one string, joined by a control character and split by
        the warehouse: DuckDB converts a list parameter value by value while holding the GIL,
        about a fifth of the calling thread's time in a first sync's ledger writes. Values that
        hold the separator or the null marker (or are not strings) go as a list."""
        nulls = values.count(None)
        texts = [NULL_MARK if value is None else value for value in values] if nulls else values
        try:
            joined = SEPARATOR.join(texts)
        except TypeError:
            joined = None
        if values and joined is not None and joined.count(SEPARATOR) == len(values) - 1 \
                and joined.count(NULL_MARK) == nulls:
            split = f"unnest(string_split(?, chr({ord(SEPARATOR)})))"
            return (f"nullif({split}, chr({ord(NULL_MARK)}))" if nulls else split), joined
        return "unnest(cast(? as varchar[]))", list(values)

    def payload_hash_sql(self, columns: Sequence[str], alias: str) -> str:
        """A hash of the attribute payload, computed in the warehouse. Each value is
        length-prefixed so no two different rows can concatenate to the same text."""
        parts = []
        for column in columns:
            value = f"cast({alias}.{quote_ident(column)} as varchar)"
            parts.append(f"coalesce(cast(length({value}) as varchar) || ':' || {value}, 'N')")
        return "md5(" + " || '|' || ".join(parts or ["''"]) + ")"

    def fingerprint_sql(self, expressions: Sequence[str]) -> str:
        """A signed 64-bit integer fingerprint of several values (NULLs included), computed
        in the warehouse: the diff compares these integers instead of 64-character strings.
        dbt computes the same value in each audience model (macros/member_fingerprint.sql);
        the two must stay equal (tests/warehouse checks them on the demo warehouse).

        DuckDB: hash(a, b, ...), less one bit so that it is a BIGINT as on other engines. A
        collision (two different rows, same 63 bits, odds about 2^-63 per changed row) would
        make a changed member look unchanged, so that one change would not be sent until the
        row changes again; nothing wrong is ever sent. Ledger rows store the value, and
        Ledger.ensure() recomputes them from the stored strings if the engine changes."""
        return "cast(hash(" + ", ".join(expressions) + ") >> 1 as bigint)"

    def is_base_table(self, relation_parts: Sequence[str | None]) -> bool:
        """Tables have a rowid (used to fetch changed rows back cheaply); views do not."""
        database, schema, name = relation_parts
        database = database or self.database
        row = self.fetchone(
            "select table_type from information_schema.tables "
            "where table_catalog = ? and table_schema = ? and table_name = ?", (database, schema, name))
        return bool(row and row[0] == "BASE TABLE")

    def is_sha256_hex_sql(self, expression: str) -> str:
        # A regex: on DuckDB 2.0 four times faster than ltrim() of the hex digits.
        return f"regexp_full_match({expression}, '[0-9a-f]{{64}}')"

    def close(self) -> None:
        self._conn.close()
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)


def _remove_abandoned_copies() -> None:
    """Local copies left by a pusher that was killed (kill -9 skips close()): their process is gone."""
    for directory in Path(tempfile.gettempdir()).glob(f"{COPY_PREFIX}*-*"):
        pid = directory.name[len(COPY_PREFIX):].split("-")[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)          # signal 0: only asks whether the process exists
        except ProcessLookupError:
            shutil.rmtree(directory, ignore_errors=True)
        except OSError:
            pass                          # alive, someone else's


class _Transaction:
    def __init__(self, conn: Any):
        self._conn = conn

    def __enter__(self):
        self._conn.execute("begin transaction")
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self._conn.execute("commit")
        else:
            self._conn.execute("rollback")
        return False

