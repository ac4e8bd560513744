"""The same seeds give the same people, events and audiences on every engine: the demo is built
on PostgreSQL (a real server) and compared with the DuckDB build, row for row.

Rows are compared as multisets of normalized values: numbers as floats rounded to 6 decimals
(a double sum may differ in its last bits between engines), timestamps as naive UTC datetimes.
member_fingerprint is left out: it is an engine hash (hash() on DuckDB, hashtextextended on
PostgreSQL), which the pusher recomputes with the engine's own expression; everything else the
models compute (email/phone SHA-256, event ids, holdout groups) must be byte-identical.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections import Counter

import duckdb
import pytest

pytestmark = pytest.mark.engines

COMPARED = {
    "audience_membership": {"member_fingerprint"},
    "cio_people": set(),
    "cio_events": set(),
}


def normalize(value):
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, (float, decimal.Decimal)):
        return round(float(value), 6)
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return value
    raise TypeError(f"no normalization for {type(value).__name__}: {value!r}")


def rows_of(cursor, query: str, left_out: set[str]) -> tuple[list[str], Counter]:
    cursor.execute(query)
    names = [column[0] for column in cursor.description]
    kept = sorted(name for name in names if name not in left_out)
    positions = [names.index(name) for name in kept]
    return kept, Counter(tuple(normalize(row[i]) for i in positions) for row in cursor.fetchall())


def duckdb_rows(demo_warehouse, table: str, left_out: set[str]):
    with duckdb.connect(str(demo_warehouse.database), read_only=True) as connection:
        return rows_of(connection.cursor(), f"select * from main.{table}", left_out)


def postgres_rows(postgres, postgres_demo, table: str, left_out: set[str]):
    import psycopg2  # the `engines` extra, imported here so make test collects without it

    connection = psycopg2.connect(host=postgres.host, port=postgres.port, user=postgres.user,
                                  dbname=postgres_demo.env["PUSHER_PG_DATABASE"])
    try:
        return rows_of(connection.cursor(), f"select * from retention.{table}", left_out)
    finally:
        connection.close()


def assert_same(table: str, reference, other, engine: str):
    (reference_columns, reference_rows), (other_columns, other_rows) = reference, other
    assert other_columns == reference_columns, table
    assert reference_rows, f"{table} is empty on DuckDB: nothing was compared"
    only_duckdb, only_other = reference_rows - other_rows, other_rows - reference_rows
    assert not only_duckdb and not only_other, (
        f"{table} differs: {sum(only_duckdb.values())} rows only on DuckDB, e.g. {list(only_duckdb)[:2]}; "
        f"{sum(only_other.values())} only on {engine}, e.g. {list(only_other)[:2]}")


def test_postgres_build_passes(postgres_demo):
    assert postgres_demo.build.not_passing() == [], postgres_demo.build.output()
    assert postgres_demo.build.completed.returncode == 0, postgres_demo.build.output()


@pytest.mark.parametrize("table", sorted(COMPARED))
def test_postgres_equals_duckdb(table, demo_warehouse, postgres, postgres_demo):
    left_out = COMPARED[table]
    assert_same(table, duckdb_rows(demo_warehouse, table, left_out),
                postgres_rows(postgres, postgres_demo, table, left_out), "PostgreSQL")
