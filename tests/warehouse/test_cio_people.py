"""cio_people.last_synced_at: the day of the oldest last export among the freshness sources,
so a Customer.io segment can suppress people whose data is stale."""

from __future__ import annotations

import duckdb


def test_last_synced_at_is_the_oldest_fresh_source_cut_to_the_day(demo_warehouse):
    assert demo_warehouse.build.not_passing() == [], demo_warehouse.build.output()
    with duckdb.connect(str(demo_warehouse.database), read_only=True) as conn:
        rows = conn.execute("""
            select count(*),
                   count(*) filter (where people.last_synced_at is distinct from date_trunc('day', least(
                       profile.store_last_synced_at, profile.subscriptions_last_synced_at,
                       profile.loyalty_last_synced_at, profile.returns_last_synced_at))),
                   count(*) filter (where people.last_synced_at is null),
                   count(distinct people.last_synced_at)
            from main.cio_people as people
            join main.customer_profile as profile using (customer_id)""").fetchone()
        stale = conn.execute("select count(*) from main.cio_people where not is_data_fresh").fetchone()[0]
        stale_older = conn.execute("""
            select count(*) from main.cio_people
            where not is_data_fresh and last_synced_at < timestamp '2026-11-20 12:00:00' - interval 2 day""").fetchone()[0]
    total, different, missing, distinct = rows
    assert total > 0 and different == 0 and missing == 0
    assert distinct >= 2                 # per person: the loyalty export time differs between people
    assert stale and stale_older == stale  # every stale person is found by "older than 2 days"
