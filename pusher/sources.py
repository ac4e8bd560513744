"""The dialect layer: the only module that knows which engine the models were built on.

The pusher's SQL (diff, plan, ledger) runs on DuckDB. On DuckDB it reads the warehouse file
directly. On any other engine it first streams the relations it reads (each sync's model and
the test-evidence table) into a local DuckDB copy, under the same schema and table names, so
the same SQL runs unchanged and at DuckDB's speed; the warehouse itself is only ever read.

The connection is opened by the dbt adapter of the profile's type (its Credentials class built
from the rendered target, its connection manager's open()), so a profile that works for
`dbt build` works here unchanged. Rows are streamed, never held whole in memory, into a CSV
file in the copy's directory, which DuckDB then reads in one statement:
  - PostgreSQL: COPY (select ...) TO STDOUT in CSV (https://www.postgresql.org/docs/15/sql-copy.html),
    written as it arrives (psycopg2's copy_expert); 3.4x faster than a server-side cursor with
    fetchmany, then an insert per chunk, on 1M rows;
  - Spark (session method): DataFrame.toLocalIterator(), one partition at a time
    (https://spark.apache.org/docs/3.5.0/api/python/reference/pyspark.sql/api/pyspark.sql.DataFrame.toLocalIterator.html).
The CSV keeps NULL (nothing) apart from '' (a quoted empty string).

Values keep their meaning and their text across engines, so the payload hashes the pusher
computes are the same whichever engine built the model: every source type maps to the DuckDB
type DuckDB's own build has (double stays DOUBLE, decimal(p,s) DECIMAL(p,s), integers their
width, timestamps naive UTC, booleans BOOLEAN); JSON and types DuckDB has no match for arrive
as text. An audience's `member_fingerprint` column (an engine hash, macros/member_fingerprint.sql)
is recomputed while copying with the pusher's own expression, so it equals DuckDB's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from pusher.errors import ConfigError
from pusher.warehouse import Profile, qualified, quote_ident

if TYPE_CHECKING:
    from pusher.warehouse import Warehouse

FINGERPRINT_COLUMN = "member_fingerprint"
TEST_EVIDENCE_TABLE = "pusher_dbt_results"


@dataclass(frozen=True)
class Column:
    name: str
    select: str        # the expression read on the source (a cast where the driver's value would not fit)
    local_type: str    # its DuckDB type in the copy


# -- PostgreSQL -------------------------------------------------------------------------------
_PG_TYPES = {"text": "VARCHAR", "character varying": "VARCHAR", "character": "VARCHAR", "name": "VARCHAR",
             "smallint": "SMALLINT", "integer": "INTEGER", "bigint": "BIGINT", "real": "FLOAT",
             "double precision": "DOUBLE", "boolean": "BOOLEAN", "date": "DATE",
             "timestamp without time zone": "TIMESTAMP", "time without time zone": "TIME"}


def postgres_column(name: str, data_type: str, precision: int | None, scale: int | None) -> Column:
    quoted = quote_ident(name)
    if data_type in _PG_TYPES:
        return Column(name, quoted, _PG_TYPES[data_type])
    if data_type == "numeric":
        if precision and precision <= 38:
            return Column(name, quoted, f"DECIMAL({precision},{scale or 0})")
        return Column(name, f"cast({quoted} as double precision)", "DOUBLE")   # unbounded numeric
    if data_type == "timestamp with time zone":
        return Column(name, f"({quoted} at time zone 'UTC')", "TIMESTAMP")     # naive UTC, as in every model
    if data_type in ("json", "jsonb"):
        return Column(name, f"cast({quoted} as text)", "JSON")
    return Column(name, f"cast({quoted} as text)", "VARCHAR")


class PostgresSource:
    """A psycopg2 connection opened by dbt-postgres."""

    def __init__(self, handle: Any, database: str):
        self.handle = handle
        self.database = database

    def schema_of(self, name: str, preferred: str) -> str | None:
        with self.handle.cursor() as cursor:
            cursor.execute("select table_schema from information_schema.tables where table_name = %s "
                           "order by table_schema <> %s, table_schema limit 1", (name, preferred))
            row = cursor.fetchone()
        return row[0] if row else None

    def columns(self, schema: str, name: str) -> list[Column]:
        with self.handle.cursor() as cursor:
            cursor.execute("select column_name, data_type, numeric_precision, numeric_scale "
                           "from information_schema.columns where table_schema = %s and table_name = %s "
                           "order by ordinal_position", (schema, name))
            return [postgres_column(*row) for row in cursor.fetchall()]

    def export(self, schema: str, name: str, columns: Sequence[Column], path: Path) -> None:
        """COPY ... TO STDOUT as CSV, written to `path` as it arrives (about 4x faster than a
        server-side cursor with fetchmany, measured on 1M rows). Text forms pinned: ISO dates,
        doubles in their shortest exact form."""
        with self.handle.cursor() as cursor, path.open("wb") as sink:
            cursor.execute("set local datestyle = 'ISO, YMD'; set local extra_float_digits = 3; "
                           "set local timezone = 'UTC'")
            cursor.copy_expert(f"copy (select {', '.join(c.select for c in columns)} from {qualified(schema, name)}) "
                               "to stdout with (format csv)", sink, size=1 << 20)
        self.handle.rollback()       # ends the read-only transaction

    def close(self) -> None:
        self.handle.close()


# -- Spark --------------------------------------------------------------------------------------
_SPARK_TYPES = {"string": "VARCHAR", "varchar": "VARCHAR", "char": "VARCHAR", "tinyint": "TINYINT",
                "smallint": "SMALLINT", "int": "INTEGER", "bigint": "BIGINT", "float": "FLOAT",
                "double": "DOUBLE", "boolean": "BOOLEAN", "date": "DATE", "timestamp_ntz": "TIMESTAMP"}


def spark_column(name: str, data_type: str) -> Column:
    quoted = "`" + name.replace("`", "``") + "`"
    simple = data_type.split("(")[0]
    if simple in _SPARK_TYPES:
        return Column(name, quoted, _SPARK_TYPES[simple])
    if match := re.fullmatch(r"decimal\((\d+),\s*(\d+)\)", data_type):
        return Column(name, quoted, f"DECIMAL({match[1]},{match[2]})")
    if data_type == "timestamp":
        # As text in the session time zone (UTC in the profile): Python's conversion of a
        # timestamp would use the local zone of this machine instead.
        return Column(name, f"cast({quoted} as string)", "TIMESTAMP")
    if data_type.startswith(("array", "map", "struct")):
        return Column(name, f"to_json({quoted})", "JSON")
    return Column(name, f"cast({quoted} as string)", "VARCHAR")


class SparkSessionSource:
    """The SparkSession dbt-spark's session method starts in this process."""

    def __init__(self, spark: Any, default_schema: str):
        self.spark = spark
        self.database = None               # dbt-spark's manifest has no database
        self.default_schema = default_schema

    @staticmethod
    def _quote(*parts: str) -> str:
        return ".".join("`" + part.replace("`", "``") + "`" for part in parts)

    def schema_of(self, name: str, preferred: str) -> str | None:
        return preferred if self.spark.catalog.tableExists(self._quote(preferred, name)) else None

    def columns(self, schema: str, name: str) -> list[Column]:
        """The table's columns, none when it does not exist (one metastore call either way)."""
        from pyspark.errors import AnalysisException

        try:
            fields = self.spark.table(self._quote(schema, name)).schema.fields
        except AnalysisException:
            return []
        return [spark_column(field.name, field.dataType.simpleString()) for field in fields]

    def export(self, schema: str, name: str, columns: Sequence[Column], path: Path) -> None:
        """The rows as CSV in `path`, one partition at a time (toLocalIterator). Spark writes each
        line itself (NULL as nothing, every other value quoted, so '' is not NULL): one string
        per row crosses to Python instead of a Row of values, several times faster."""
        fields = [f"case when {c.select} is null then '' else concat('\"', replace(cast({c.select} as string), "
                  f"'\"', '\"\"'), '\"') end" for c in columns]
        frame = self.spark.sql(f"select concat_ws(',', {', '.join(fields)}) as line "
                               f"from {self._quote(schema, name)}")
        with path.open("w", encoding="utf-8") as sink:
            for row in frame.toLocalIterator(prefetchPartitions=True):   # the next partition computes meanwhile
                sink.write(row[0] + "\n")

    def close(self) -> None:
        pass    # the session ends with the process (stopping it takes seconds)


# -- opening a source through dbt ------------------------------------------------------------
def open_source(profile: Profile) -> PostgresSource | SparkSessionSource:
    """Open the profile's warehouse with dbt's adapter for its type."""
    from dbt.adapters.contracts.connection import Connection
    from dbt.adapters.factory import FACTORY
    from dbt.config.profile import Profile as DbtProfile
    from dbt_common.exceptions import DbtBaseException

    kind = profile.settings["type"]
    try:
        credentials = DbtProfile._credentials_from_profile(dict(profile.settings), profile.name, profile.target)
        if kind == "spark" and str(credentials.method) != "session":
            raise ConfigError(f"target {profile.target!r}: the pusher reads Spark with the session method only "
                              f"for now (method {credentials.method}); see Running on your warehouse in README.md")
        manager = FACTORY.get_adapter_class_by_name(kind).ConnectionManager
        connection = manager.open(Connection(type=kind, name="pusher", credentials=credentials, state="init",
                                             handle=None))
    except DbtBaseException as exc:
        raise ConfigError(f"cannot open the {kind} warehouse of target {profile.target!r}: {exc}") from exc
    if kind == "postgres":
        return PostgresSource(connection.handle, credentials.database)
    from pyspark.sql import SparkSession

    connection.handle.cursor().execute("select 1")     # dbt-spark starts the session on the first query
    spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")             # Spark's warnings are not the pusher's output
    return SparkSessionSource(spark, credentials.schema)


# -- the local copy ---------------------------------------------------------------------------
def copy_relation(source: Any, wh: "Warehouse", schema: str, name: str) -> int | None:
    """Stream one relation into the local copy (same schema and name); returns its row count,
    None when the source has no such relation. The rows go through a CSV file in the copy's
    directory, read by DuckDB in one statement."""
    columns = source.columns(schema, name)
    if not columns:
        return None
    fingerprint = any(column.name == FINGERPRINT_COLUMN for column in columns)
    copied = [column for column in columns if column.name != FINGERPRINT_COLUMN]
    target = qualified(wh.database, schema, name)
    definitions = [f"{quote_ident(c.name)} {c.local_type}" for c in copied]
    names = [quote_ident(c.name) for c in copied]
    values = [f"cast({quote_ident(f'c{i}')} as {c.local_type})" for i, c in enumerate(copied)]
    if fingerprint:   # the pusher's own expression (see pusher.diff.DiffSql.computed_fingerprint)
        from pusher.ledger import audience_fingerprint_sql

        definitions.append(f"{FINGERPRINT_COLUMN} BIGINT")
        names.append(FINGERPRINT_COLUMN)
        key, email, phone = (values[[c.name for c in copied].index(column)]
                             for column in ("customer_id", "email_sha256", "phone_sha256"))
        values.append(audience_fingerprint_sql(wh, f"cast({key} as varchar)", email, phone))
    wh.execute(f"create schema if not exists {qualified(wh.database, schema)}")
    wh.execute(f"create or replace table {target} ({', '.join(definitions)})")
    path = Path(wh.scratch or ".") / f"{schema}.{name}.csv"
    try:
        source.export(schema, name, copied, path)
        layout = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(copied)))
        wh.execute(f"insert into {target} ({', '.join(names)}) select {', '.join(values)} from "
                   f"read_csv(?, header = false, auto_detect = false, columns = {{{layout}}}, delim = ',', "
                   "quote = '\"', escape = '\"', allow_quoted_nulls = false)", [str(path)])
    finally:
        path.unlink(missing_ok=True)
    return int(wh.fetchone(f"select count(*) from {target}")[0])


def copy_relations(source: Any, wh: "Warehouse", relations: Sequence[tuple[str | None, str, str]],
                   evidence_schema: str | None) -> dict[str, int]:
    """Copy each relation that exists on the source, and the test-evidence table; returns rows
    copied per relation. A missing model is left out: the plan then says it is not built."""
    copied: dict[str, int] = {}
    for _, schema, name in dict.fromkeys((None, schema, name) for _, schema, name in relations):
        if (rows := copy_relation(source, wh, schema, name)) is not None:
            copied[f"{schema}.{name}"] = rows
    evidence = source.schema_of(TEST_EVIDENCE_TABLE, evidence_schema or "")
    if evidence is not None and f"{evidence}.{TEST_EVIDENCE_TABLE}" not in copied:
        if (rows := copy_relation(source, wh, evidence, TEST_EVIDENCE_TABLE)) is not None:
            copied[f"{evidence}.{TEST_EVIDENCE_TABLE}"] = rows
    return copied
