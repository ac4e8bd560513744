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
  - Spark (session method): with a local master, Spark's tasks write the CSV lines as text files
    (DataFrame.write.text, https://spark.apache.org/docs/3.5.0/sql-data-sources-text.html);
    with another master, DataFrame.toLocalIterator(), one partition at a time
    (https://spark.apache.org/docs/3.5.0/api/python/reference/pyspark.sql/api/pyspark.sql.DataFrame.toLocalIterator.html);
  - any other adapter, Spark over Thrift or HTTP included: a DB-API cursor, fetchmany in chunks.
The CSV keeps NULL (nothing) apart from '' (a quoted empty string).

Values keep their meaning and their text across engines, so the payload hashes the pusher
computes are the same whichever engine built the model: every source type maps to the DuckDB
type DuckDB's own build has (double stays DOUBLE, decimal(p,s) DECIMAL(p,s), integers their
width, timestamps naive UTC, booleans BOOLEAN); JSON and types DuckDB has no match for arrive
as text. An audience's `member_fingerprint` column (an engine hash, macros/member_fingerprint.sql)
is recomputed while copying with the pusher's own expression, so it equals DuckDB's.
"""

from __future__ import annotations

import datetime as dt
import decimal
import importlib.util
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from pusher.errors import ConfigError, InputError, PusherError
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


def spark_quote(*parts: str) -> str:
    return ".".join("`" + part.replace("`", "``") + "`" for part in parts)


def spark_csv_line_select(columns: Sequence[Column], relation: str) -> str:
    """A select of one CSV line per row, built by Spark (NULL as nothing, every other value
    quoted, so '' is not NULL): one string per row crosses to Python instead of a row of values."""
    fields = [f"case when {c.select} is null then '' else concat('\"', replace(cast({c.select} as string), "
              f"'\"', '\"\"'), '\"') end" for c in columns]
    return f"select concat_ws(',', {', '.join(fields)}) as line from {relation}"


SPARK_ROWS_PER_TASK = 200_000      # rows of a partition the driver holds at once (see SparkSessionSource.export)


class SparkSessionSource:
    """The SparkSession dbt-spark's session method starts in this process."""

    def __init__(self, spark: Any, default_schema: str):
        self.spark = spark
        self.database = None               # dbt-spark's manifest has no database
        self.default_schema = default_schema

    def schema_of(self, name: str, preferred: str) -> str | None:
        return preferred if self.spark.catalog.tableExists(spark_quote(preferred, name)) else None

    def columns(self, schema: str, name: str) -> list[Column]:
        """The table's columns, none when it does not exist (one metastore call either way)."""
        from pyspark.errors import AnalysisException

        try:
            fields = self.spark.table(spark_quote(schema, name)).schema.fields
        except AnalysisException:
            return []
        return [spark_column(field.name, field.dataType.simpleString()) for field in fields]

    def export(self, schema: str, name: str, columns: Sequence[Column], path: Path) -> None:
        """The rows as CSV in `path`, one partition at a time (toLocalIterator). Spark writes each
        line itself (NULL as nothing, every other value quoted, so '' is not NULL): one string
        per row crosses to Python instead of a Row of values, several times faster.

        Each partition is one task whose whole result the driver holds (two with the prefetch):
        a table with fewer, bigger partitions than SPARK_ROWS_PER_TASK allows is repartitioned
        first, so the driver's memory bounds the partition, not the table (a 1M-row audience in
        2 partitions ran a 512 MB driver out of memory, and left 1 GB little margin)."""
        table = spark_quote(schema, name)
        memory = self.spark.sparkContext.getConf().get("spark.driver.memory", "1g")
        try:
            frame = self.spark.sql(spark_csv_line_select(columns, table))
            if self.spark.sparkContext.master.startswith("local"):
                self._write_locally(frame, path)
                return
            tasks = -(-self.spark.table(table).count() // SPARK_ROWS_PER_TASK)
            if tasks > frame.rdd.getNumPartitions():
                frame = frame.repartition(tasks)
            with path.open("w", encoding="utf-8") as sink:
                for row in frame.toLocalIterator(prefetchPartitions=True):   # the next partition computes meanwhile
                    sink.write(row[0] + "\n")
        except Exception as exc:
            from py4j.protocol import Py4JNetworkError

            if isinstance(exc, Py4JNetworkError) or "OutOfMemoryError" in str(exc):
                raise InputError(f"Spark's driver (spark.driver.memory {memory}) stopped while reading {schema}.{name}, "
                                 "most often because it ran out of memory (the JVM's own error is above): set "
                                 "PUSHER_SPARK_DRIVER_MEMORY (spark.driver.memory in the profile) higher, e.g. 2g; "
                                 "nothing was sent") from exc
            raise

    @staticmethod
    def _write_locally(frame: Any, path: Path) -> None:
        """A local master shares this machine's disk: Spark's tasks write the lines as text files
        themselves, streaming, in parallel, with no result held by the driver; they are then
        joined into `path`."""
        parts = path.with_name(path.name + ".parts")
        frame.write.mode("overwrite").text(str(parts))
        try:
            with path.open("wb") as sink:
                for part in sorted(parts.glob("part-*")):
                    with part.open("rb") as source:
                        shutil.copyfileobj(source, sink, 1 << 20)
        finally:
            shutil.rmtree(parts, ignore_errors=True)

    def close(self) -> None:
        pass    # the session ends with the process (stopping it takes seconds)


# -- any other adapter: the DB-API cursor of dbt's connection ---------------------------------
CHUNK_ROWS = 10_000      # rows per fetchmany: one round trip each

# information_schema.columns type names (lower-cased, without parameters) -> DuckDB's
_GENERIC_TYPES = {
    **{name: "VARCHAR" for name in ("text", "varchar", "character varying", "character", "char", "bpchar",
                                    "nchar", "nvarchar", "string", "name")},
    "tinyint": "TINYINT", "smallint": "SMALLINT", "int2": "SMALLINT", "integer": "INTEGER", "int": "INTEGER",
    "int4": "INTEGER", "bigint": "BIGINT", "int8": "BIGINT", "int64": "BIGINT", "long": "BIGINT",
    "real": "FLOAT", "float4": "FLOAT",
    # Snowflake's FLOAT is a double
    **{name: "DOUBLE" for name in ("double", "double precision", "float8", "float64", "float")},
    "boolean": "BOOLEAN", "bool": "BOOLEAN", "date": "DATE", "time": "TIME", "time without time zone": "TIME",
    # with a zone: the driver's aware datetime is written in UTC (export), naive as in every model
    **{name: "TIMESTAMP" for name in ("timestamp", "timestamp without time zone", "timestamp_ntz", "datetime",
                                      "timestamp with time zone", "timestamptz", "timestamp_tz", "timestamp_ltz")},
    **{name: "JSON" for name in ("json", "jsonb", "variant", "object")},
}
_DECIMAL_TYPES = ("numeric", "decimal", "number", "bignumeric")
_BACKTICK_TYPES = ("spark", "databricks", "bigquery", "mysql")     # engines quoting names with `


def generic_column(name: str, data_type: str, precision: Any, scale: Any, quote: str) -> Column:
    """One column of an information_schema.columns row; an unknown type arrives as text."""
    quoted = quote + name.replace(quote, quote * 2) + quote
    base = data_type.lower().split("(")[0].strip()
    if base in _DECIMAL_TYPES:
        if match := re.search(r"\((\d+)\s*(?:,\s*(\d+))?\)", data_type):     # e.g. BigQuery's NUMERIC(10, 2)
            precision, scale = match[1], match[2]
        if precision and int(precision) <= 38:
            return Column(name, quoted, f"DECIMAL({int(precision)},{int(scale or 0)})")
        return Column(name, quoted, "DOUBLE")        # unbounded: as PostgreSQL's numeric, a double
    return Column(name, quoted, _GENERIC_TYPES.get(base, "VARCHAR"))


def csv_field(value: Any) -> str:
    """A driver's value as a CSV field DuckDB casts back to the same value: NULL as nothing,
    everything else quoted; floats in their shortest exact form, decimals without exponent,
    aware timestamps in UTC."""
    if value is None:
        return ""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = repr(value)
    elif isinstance(value, decimal.Decimal):
        text = format(value, "f")
    elif isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        text = value.isoformat(sep=" ")
    elif isinstance(value, (dt.date, dt.time)):
        text = value.isoformat()
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, separators=(",", ":"))
    elif isinstance(value, (bytes, bytearray, memoryview)):
        text = bytes(value).hex()
    else:
        text = str(value)
    return '"' + text.replace('"', '""') + '"'


def dbapi_connection(handle: Any) -> Any:
    """The DB-API connection behind the handle dbt's adapter opened."""
    inner = getattr(handle, "handle", None)       # dbt-spark's thrift/http wrapper holds PyHive's connection
    if inner is not None and hasattr(inner, "cursor"):
        return inner
    if hasattr(handle, "cursor"):
        return handle
    if type(handle).__module__.startswith("google.cloud.bigquery"):   # dbt-bigquery's handle is its Client
        from google.cloud.bigquery import dbapi

        return dbapi.connect(handle)
    raise ConfigError(f"the pusher cannot read through a {type(handle).__name__} connection: it needs a DB-API "
                      "cursor (see Running on your warehouse in README.md)")


class CursorSource:
    """The generic reader: a DB-API cursor of the connection dbt's adapter opened from the
    profile (PEP 249: execute, then fetchmany in chunks of CHUNK_ROWS), each row written as a CSV
    line. Columns and their types come from information_schema.columns (ANSI; Snowflake, Redshift,
    Databricks, Trino...; BigQuery's is per dataset)."""

    def __init__(self, handle: Any, database: str | None, kind: str):
        self.handle = handle
        self.connection = dbapi_connection(handle)
        self.database = database
        self.kind = kind
        self.quote_char = "`" if kind in _BACKTICK_TYPES else '"'

    def relation(self, *parts: str) -> str:
        q = self.quote_char
        return ".".join(q + part.replace(q, q * 2) + q for part in parts)

    def query(self, sql: str) -> tuple[list[str], list[tuple]]:
        """Column names (lower-cased) and rows of a small query."""
        cursor = self.connection.cursor()
        try:
            cursor.execute(sql)
            return [column[0].lower() for column in cursor.description], cursor.fetchall()
        finally:
            cursor.close()

    def schema_of(self, name: str, preferred: str) -> str | None:
        return preferred if self.columns(preferred, name) else None

    def columns(self, schema: str, name: str) -> list[Column]:
        catalog = (self.relation(schema, "INFORMATION_SCHEMA", "COLUMNS") if self.kind == "bigquery"
                   else "information_schema.columns")
        # literals, not parameters: drivers differ in placeholder style; names from the manifest
        names, rows = self.query(f"select * from {catalog} where lower(table_schema) = lower({_literal(schema)}) "
                                 f"and lower(table_name) = lower({_literal(name)}) order by ordinal_position")
        found = [dict(zip(names, row)) for row in rows]
        return [generic_column(row["column_name"], row["data_type"], row.get("numeric_precision"),
                               row.get("numeric_scale"), self.quote_char) for row in found]

    def select(self, columns: Sequence[Column], relation: str) -> str:
        return f"select {', '.join(c.select for c in columns)} from {relation}"

    def export(self, schema: str, name: str, columns: Sequence[Column], path: Path) -> None:
        cursor = self.connection.cursor()
        try:
            cursor.arraysize = CHUNK_ROWS          # PyHive fetches arraysize rows per round trip
            cursor.execute(self.select(columns, self.relation(schema, name)))
            with path.open("w", encoding="utf-8") as sink:
                while rows := cursor.fetchmany(CHUNK_ROWS):
                    sink.writelines(self.line(row) for row in rows)
        finally:
            cursor.close()
        if hasattr(self.connection, "rollback"):
            try:
                self.connection.rollback()     # ends a read-only transaction where there is one
            except Exception:                  # noqa: BLE001 - a driver without transactions may refuse
                pass

    @staticmethod
    def line(row: Sequence[Any]) -> str:
        return ",".join(csv_field(value) for value in row) + "\n"

    def close(self) -> None:
        self.handle.close()


class SparkCursorSource(CursorSource):
    """Spark over Thrift or HTTP (dbt-spark's PyHive connection; a Spark Thrift server,
    Databricks): columns from DESCRIBE TABLE with the session reader's type mapping, and each
    CSV line built by Spark as in the session reader, so one string per row crosses the wire."""

    def __init__(self, handle: Any, default_schema: str):
        super().__init__(handle, None, "spark")      # dbt-spark's manifest has no database
        self.default_schema = default_schema

    def columns(self, schema: str, name: str) -> list[Column]:
        try:
            _, rows = self.query(f"describe table {spark_quote(schema, name)}")
        except Exception as exc:                      # PyHive's OperationalError carries Spark's error class
            if "TABLE_OR_VIEW_NOT_FOUND" in str(exc) or "SCHEMA_NOT_FOUND" in str(exc):
                return []
            raise
        columns = []
        for column_name, data_type, *_ in rows:
            if not column_name or column_name.startswith("#"):     # partition information follows
                break
            columns.append(spark_column(column_name, data_type))
        return columns

    def select(self, columns: Sequence[Column], relation: str) -> str:
        return spark_csv_line_select(columns, relation)

    @staticmethod
    def line(row: Sequence[Any]) -> str:
        return row[0] + "\n"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# -- opening a source through dbt ------------------------------------------------------------
def open_source(profile: Profile) -> PostgresSource | SparkSessionSource | CursorSource:
    """Open the profile's warehouse with dbt's adapter for its type: the fast readers for
    PostgreSQL and a Spark session, the generic cursor reader for everything else."""
    from dbt.adapters.contracts.connection import Connection
    from dbt.adapters.factory import FACTORY
    from dbt.config.profile import Profile as DbtProfile
    from dbt_common.exceptions import DbtBaseException

    kind = profile.settings["type"]
    if importlib.util.find_spec(f"dbt.adapters.{kind}") is None:
        raise ConfigError(f"target {profile.target!r} has type {kind!r}, whose dbt adapter is not installed: "
                          f"pip install dbt-{kind} (the minor version of dbt-core)")
    try:
        credentials = DbtProfile._credentials_from_profile(dict(profile.settings), profile.name, profile.target)
        manager = FACTORY.get_adapter_class_by_name(kind).ConnectionManager
        connection = manager.open(Connection(type=kind, name="pusher", credentials=credentials, state="init",
                                             handle=None))
    except DbtBaseException as exc:
        raise ConfigError(f"cannot open the {kind} warehouse of target {profile.target!r}: {exc}") from exc
    if kind == "postgres":
        return PostgresSource(connection.handle, credentials.database)
    if kind == "spark" and str(credentials.method) != "session":
        return SparkCursorSource(connection.handle, credentials.schema)
    if kind != "spark":
        return CursorSource(connection.handle, getattr(credentials, "database", None), kind)
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


def relations_read_by(project: Any, select: Sequence[str] | None) -> list[tuple[str | None, str, str]]:
    """The relations the selected syncs read (all syncs when nothing is selected): each sync's
    model and, for an audience, the events models of its destination (an event acknowledged
    there makes its person known, pusher.diff.known_people_sql). Nothing else is copied."""
    chosen = project.select(select)
    relations = [sync.relation for sync in chosen]
    for sync in chosen:
        if sync.kind == "audience":
            relations += [other.relation for other in project.syncs
                          if other.kind == "events" and other.destination == sync.destination]
    return list(dict.fromkeys(relations))


def copy_relations(source: Any, wh: "Warehouse", relations: Sequence[tuple[str | None, str, str]],
                   evidence_schema: str | None) -> dict[str, int]:
    """Copy each relation that exists on the source, and the test-evidence table; returns rows
    copied per relation. A missing model is left out: the plan then says it is not built."""
    copied: dict[str, int] = {}
    for _, schema, name in dict.fromkeys((None, schema, name) for _, schema, name in relations):
        if (rows := _copy_or_explain(source, wh, schema, name)) is not None:
            copied[f"{schema}.{name}"] = rows
    evidence = source.schema_of(TEST_EVIDENCE_TABLE, evidence_schema or "")
    if evidence is not None and f"{evidence}.{TEST_EVIDENCE_TABLE}" not in copied:
        if (rows := _copy_or_explain(source, wh, evidence, TEST_EVIDENCE_TABLE)) is not None:
            copied[f"{evidence}.{TEST_EVIDENCE_TABLE}"] = rows
    return copied


def _copy_or_explain(source: Any, wh: "Warehouse", schema: str, name: str) -> int | None:
    """copy_relation; the warehouse's own error, if reading fails, names the relation."""
    try:
        return copy_relation(source, wh, schema, name)
    except PusherError:
        raise
    except Exception as exc:
        raise InputError(f"cannot read {schema}.{name} from the warehouse, nothing was sent: "
                         f"{type(exc).__name__}: {error_summary(exc)}") from exc


def error_summary(exc: BaseException, limit: int = 600) -> str:
    """A driver's message without the stack trace a JVM engine appends (lines starting `at `)."""
    lines = [line.strip() for line in str(exc).splitlines()]
    kept = [line for line in lines if line and not line.startswith(("at ", "... "))]
    text = " ".join(kept)
    return text if len(text) <= limit else text[:limit] + "..."
