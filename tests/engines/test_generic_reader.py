"""The generic cursor reader (pusher.sources.CursorSource, used for any adapter without a fast
path) against the PostgreSQL COPY reader, on the same PostgreSQL build of the demo: every synced
model and the test evidence land in the local copy with the same DuckDB types and the same rows,
so payload hashes are the same whichever reader copied them. PostgreSQL stands in for Snowflake,
BigQuery...: its driver hands over Python values (Decimal, aware datetime, float) the way theirs do."""

from __future__ import annotations

import duckdb
import pytest

from pusher import sources
from pusher.config import load_project
from pusher.warehouse import Warehouse, load_profile, qualified
from tests.conftest import REPO

pytestmark = [pytest.mark.engines, pytest.mark.timeout(1200)]


def local_copy(tmp_path, name: str) -> Warehouse:
    (tmp_path / f"{name}-scratch").mkdir()
    return Warehouse(duckdb.connect(str(tmp_path / f"{name}.duckdb")), name, tmp_path / f"{name}-scratch")


def test_the_generic_reader_copies_what_the_copy_reader_copies(postgres, postgres_demo, tmp_path):
    env = {**postgres.env(postgres_demo.env["PUSHER_PG_DATABASE"]), "DBT_TARGET": "postgres"}
    profile = load_profile(REPO, env=env)
    project = load_project(REPO, postgres_demo.workdir / "target")
    relations = [sync.relation for sync in project.syncs]
    fast, generic = sources.open_source(profile), sources.open_source(profile)
    assert isinstance(fast, sources.PostgresSource)
    generic = sources.CursorSource(generic.handle, generic.database, "postgres")
    by_copy, by_cursor = local_copy(tmp_path, "by_copy"), local_copy(tmp_path, "by_cursor")
    try:
        copied = sources.copy_relations(fast, by_copy, relations, "retention")
        assert sources.copy_relations(generic, by_cursor, relations, "retention") == copied
        assert "retention.pusher_dbt_results" in copied and len(copied) > 10 and sum(copied.values()) > 1000
    finally:
        for closing in (by_cursor, fast, generic):
            closing.close()
    try:
        by_copy.execute(f"attach '{tmp_path / 'by_cursor.duckdb'}' as by_cursor (read_only)")
        for relation in copied:
            schema, name = relation.split(".")
            types = ("select column_name, data_type from information_schema.columns where table_catalog = ? "
                     "and table_schema = ? and table_name = ? order by ordinal_position")
            assert (by_copy.fetchall(types, ("by_copy", schema, name))
                    == by_copy.fetchall(types, ("by_cursor", schema, name))), relation
            one, other = qualified("by_copy", schema, name), qualified("by_cursor", schema, name)
            differing = by_copy.fetchone(f"select (select count(*) from (from {one} except all from {other})) + "
                                         f"(select count(*) from (from {other} except all from {one}))")[0]
            assert differing == 0, f"{relation}: {differing} rows differ between the two readers"
    finally:
        by_copy.close()
