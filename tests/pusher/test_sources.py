"""The local copy's column types: each engine's type becomes the DuckDB type DuckDB's own build
has, so a value prints the same text (and hashes the same) whichever engine built the model.
Pure mapping, no server (tests/engines runs the copies on real PostgreSQL and Spark)."""

from __future__ import annotations

import pytest

from pusher.sources import postgres_column, spark_column


@pytest.mark.parametrize("data_type, precision, scale, select, local", [
    ("double precision", 53, None, '"v"', "DOUBLE"),
    ("integer", 32, 0, '"v"', "INTEGER"),
    ("text", None, None, '"v"', "VARCHAR"),
    ("boolean", None, None, '"v"', "BOOLEAN"),
    ("numeric", 12, 2, '"v"', "DECIMAL(12,2)"),
    ("numeric", None, None, 'cast("v" as double precision)', "DOUBLE"),
    ("timestamp without time zone", None, None, '"v"', "TIMESTAMP"),
    ("timestamp with time zone", None, None, "(\"v\" at time zone 'UTC')", "TIMESTAMP"),
    ("jsonb", None, None, 'cast("v" as text)', "JSON"),
    ("uuid", None, None, 'cast("v" as text)', "VARCHAR"),
])
def test_postgres_types(data_type, precision, scale, select, local):
    column = postgres_column("v", data_type, precision, scale)
    assert (column.select, column.local_type) == (select, local)


@pytest.mark.parametrize("data_type, select, local", [
    ("double", "`v`", "DOUBLE"),
    ("int", "`v`", "INTEGER"),
    ("string", "`v`", "VARCHAR"),
    ("decimal(12,2)", "`v`", "DECIMAL(12,2)"),
    ("timestamp", "cast(`v` as string)", "TIMESTAMP"),
    ("array<string>", "to_json(`v`)", "JSON"),
    ("binary", "cast(`v` as string)", "VARCHAR"),
])
def test_spark_types(data_type, select, local):
    column = spark_column("v", data_type)
    assert (column.select, column.local_type) == (select, local)
