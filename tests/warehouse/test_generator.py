"""The Parquet source generator: shapes match the raw contract, output is deterministic."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "generate_sources.py"
AS_OF = "2026-11-20 12:00:00"
N = 2_000

# Written out from sources.md on purpose (not imported from the generator), so a drift in
# the generator's own schema table is caught.
EXPECTED = {
    "store/customers": {
        "customer_id": "VARCHAR", "email": "VARCHAR", "phone": "VARCHAR",
        "first_name": "VARCHAR", "last_name": "VARCHAR", "country_code": "VARCHAR",
        "accepts_marketing": "BOOLEAN", "created_at": "TIMESTAMP", "updated_at": "TIMESTAMP",
        "_exported_at": "TIMESTAMP",
    },
    "store/orders": {
        "order_id": "VARCHAR", "customer_id": "VARCHAR", "email": "VARCHAR",
        "ordered_at": "TIMESTAMP", "financial_status": "VARCHAR",
        "total_price": "DECIMAL(12,2)", "currency": "VARCHAR", "_exported_at": "TIMESTAMP",
    },
    "store/order_lines": {
        "order_line_id": "VARCHAR", "order_id": "VARCHAR", "product_id": "VARCHAR",
        "product_category": "VARCHAR", "quantity": "INTEGER", "unit_price": "DECIMAL(12,2)",
        "_exported_at": "TIMESTAMP",
    },
    "store/refunds": {
        "refund_id": "VARCHAR", "order_id": "VARCHAR", "refunded_at": "TIMESTAMP",
        "amount": "DECIMAL(12,2)", "_exported_at": "TIMESTAMP",
    },
    "subscriptions/subscription_events": {
        "event_id": "VARCHAR", "subscription_id": "VARCHAR", "customer_email": "VARCHAR",
        "store_customer_id": "VARCHAR", "status": "VARCHAR", "changed_at": "TIMESTAMP",
        "_exported_at": "TIMESTAMP",
    },
    "loyalty/loyalty_accounts": {
        "account_id": "VARCHAR", "email": "VARCHAR", "points_balance": "INTEGER",
        "vip_tier": "VARCHAR", "updated_at": "TIMESTAMP", "_exported_at": "TIMESTAMP",
    },
    "returns/returns": {
        "return_id": "VARCHAR", "order_id": "VARCHAR", "customer_email": "VARCHAR",
        "status": "VARCHAR", "updated_at": "TIMESTAMP", "_exported_at": "TIMESTAMP",
    },
    "reviews/reviews": {
        "review_id": "VARCHAR", "customer_email": "VARCHAR", "product_id": "VARCHAR",
        "rating": "INTEGER", "submitted_at": "TIMESTAMP", "_exported_at": "TIMESTAMP",
    },
    "back_in_stock/back_in_stock_requests": {
        "request_id": "VARCHAR", "email": "VARCHAR", "phone": "VARCHAR", "product_id": "VARCHAR",
        "requested_at": "TIMESTAMP", "notified_at": "TIMESTAMP", "_exported_at": "TIMESTAMP",
    },
    "web_events/web_events": {
        "event_id": "VARCHAR", "anonymous_id": "VARCHAR", "customer_id": "VARCHAR",
        "email": "VARCHAR", "event_name": "VARCHAR", "product_id": "VARCHAR",
        "cart_value": "DECIMAL(12,2)", "occurred_at": "TIMESTAMP", "_exported_at": "TIMESTAMP",
    },
}
KEYS = {
    "store/customers": ["customer_id"], "store/orders": ["order_id", "customer_id"],
    "store/order_lines": ["order_line_id", "order_id"], "store/refunds": ["refund_id", "order_id"],
    "subscriptions/subscription_events": ["event_id", "subscription_id"],
    "loyalty/loyalty_accounts": ["account_id"], "returns/returns": ["return_id", "order_id"],
    "reviews/reviews": ["review_id"], "back_in_stock/back_in_stock_requests": ["request_id"],
    "web_events/web_events": ["event_id", "anonymous_id"],
}
# Tables where every row is one entity (no re-exports).
UNIQUE_KEYS = {
    "store/order_lines": "order_line_id", "store/refunds": "refund_id",
    "subscriptions/subscription_events": "event_id", "reviews/reviews": "review_id",
    "back_in_stock/back_in_stock_requests": "request_id", "web_events/web_events": "event_id",
}


def load_generator():
    spec = importlib.util.spec_from_file_location("generate_sources", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_generator(out: Path, customers: int = N, seed: int = 7, *extra: str):
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--customers", str(customers), "--seed", str(seed),
         "--out", str(out), "--as-of", AS_OF, "--threads", "2", *extra],
        capture_output=True, text=True, cwd=REPO,
    )


def scan(out: Path, table: str) -> str:
    return f"read_parquet('{(out / table).as_posix()}/*.parquet')"


def rows(out: Path, table: str) -> list[tuple]:
    with duckdb.connect() as con:
        return con.execute(f"SELECT * FROM {scan(out, table)} ORDER BY ALL").fetchall()


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("generated")
    completed = run_generator(out)
    assert completed.returncode == 0, completed.stderr
    return out


def test_every_table_has_exactly_the_contract_columns_and_types(world):
    with duckdb.connect() as con:
        for table, expected in EXPECTED.items():
            described = con.execute(f"DESCRIBE SELECT * FROM {scan(world, table)}").fetchall()
            assert {name: ctype for name, ctype, *_ in described} == expected, table
            assert [name for name, *_ in described] == list(expected), f"{table} column order"


def test_files_are_written_per_source_and_table_as_parts(world):
    written = sorted(p.relative_to(world).as_posix() for p in world.rglob("*.parquet"))
    assert written == sorted(f"{table}/part-0.parquet" for table in EXPECTED)


def test_summary_line_per_table_on_stderr(tmp_path):
    completed = run_generator(tmp_path / "out", customers=50)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == ""
    lines = completed.stderr.strip().splitlines()
    assert [line.split()[0] for line in lines[:-1]] == [
        table.replace("/", ".") for table in EXPECTED
    ]
    assert all(" rows " in line and line.rstrip().endswith(" s") for line in lines[:-1])


def test_keys_are_never_null_or_blank_and_entities_unique(world):
    with duckdb.connect() as con:
        for table, keys in KEYS.items():
            for key in keys:
                bad = con.execute(
                    f"SELECT count(*) FROM {scan(world, table)} WHERE coalesce(trim({key}), '') = ''"
                ).fetchone()[0]
                assert bad == 0, f"{table}.{key} has {bad} null/blank keys"
        for table, key in UNIQUE_KEYS.items():
            total, distinct = con.execute(
                f"SELECT count(*), count(DISTINCT {key}) FROM {scan(world, table)}"
            ).fetchone()
            assert total == distinct > 0, table
        # an entity is exported at most once per export
        for table, key in [("store/customers", "customer_id"), ("store/orders", "order_id"),
                           ("loyalty/loyalty_accounts", "account_id"), ("returns/returns", "return_id")]:
            total, distinct = con.execute(
                f"SELECT count(*), count(DISTINCT ({key}, _exported_at)) FROM {scan(world, table)}"
            ).fetchone()
            assert total == distinct, f"{table}: one {key} twice in one export"
        customers = con.execute(
            f"SELECT count(DISTINCT customer_id) FROM {scan(world, 'store/customers')}"
        ).fetchone()[0]
        assert customers == N


def test_foreign_keys_resolve(world):
    with duckdb.connect() as con:
        checks = [
            ("store/orders", "customer_id", "store/customers", "customer_id"),
            ("store/order_lines", "order_id", "store/orders", "order_id"),
            ("store/refunds", "order_id", "store/orders", "order_id"),
            ("returns/returns", "order_id", "store/orders", "order_id"),
        ]
        for child, child_key, parent, parent_key in checks:
            orphans = con.execute(
                f"SELECT count(*) FROM {scan(world, child)} WHERE {child_key} NOT IN "
                f"(SELECT {parent_key} FROM {scan(world, parent)})"
            ).fetchone()[0]
            assert orphans == 0, f"{child}.{child_key} -> {parent}"


def test_enumerations_and_ranges_follow_the_contract(world):
    with duckdb.connect() as con:
        def values(table: str, column: str) -> set:
            return {
                row[0] for row in con.execute(f"SELECT DISTINCT {column} FROM {scan(world, table)}").fetchall()
            }

        assert values("store/orders", "financial_status") == {
            "paid", "partially_refunded", "refunded", "voided"}
        assert values("subscriptions/subscription_events", "status") == {
            "active", "paused", "cancelled"}
        assert values("loyalty/loyalty_accounts", "vip_tier") == {
            "bronze", "silver", "gold", "platinum", ""}
        assert values("returns/returns", "status") == {
            "requested", "approved", "received", "refunded", "rejected"}
        assert values("reviews/reviews", "rating") == {1, 2, 3, 4, 5}
        assert values("web_events/web_events", "event_name") == {
            "product_viewed", "added_to_cart", "checkout_started"}
        bad_refunds = con.execute(
            f"SELECT count(*) FROM {scan(world, 'store/refunds')} AS refunds "
            f"JOIN {scan(world, 'store/orders')} AS orders USING (order_id) "
            "WHERE refunds.amount > orders.total_price OR refunds.refunded_at < orders.ordered_at"
        ).fetchone()[0]
        assert bad_refunds == 0


def test_exports_are_recent_and_after_every_business_time(world):
    """Freshness passes at the pinned as-of, and nothing is exported before it happened."""
    business = {
        "store/customers": "updated_at", "store/orders": "ordered_at",
        "store/refunds": "refunded_at", "returns/returns": "updated_at",
        "reviews/reviews": "submitted_at", "web_events/web_events": "occurred_at",
        "subscriptions/subscription_events": "timezone('UTC', changed_at AT TIME ZONE 'America/New_York')",
        "loyalty/loyalty_accounts": "timezone('UTC', updated_at AT TIME ZONE 'Europe/London')",
        "back_in_stock/back_in_stock_requests":
            "timezone('UTC', requested_at AT TIME ZONE 'America/Los_Angeles')",
    }
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        for table in EXPECTED:
            key = KEYS[table][0]
            newest, stale_entities = con.execute(
                f"SELECT max(latest), count(*) FILTER (WHERE latest < TIMESTAMP '{AS_OF}' "
                f"- INTERVAL 1 HOUR) FROM (SELECT {key}, max(_exported_at) AS latest "
                f"FROM {scan(world, table)} GROUP BY 1)"
            ).fetchone()
            assert "2026-11-20 11:00:00" <= str(newest) <= AS_OF, table
            if table == "loyalty/loyalty_accounts":
                # a few accounts stopped syncing, so downstream staleness rules have work
                accounts = con.execute(
                    f"SELECT count(DISTINCT account_id) FROM {scan(world, table)}").fetchone()[0]
                assert 0 < stale_entities < accounts * 0.01, stale_entities
            else:
                assert stale_entities == 0, f"{table}: every entity is in the latest export"
        for table, happened in business.items():
            early = con.execute(
                f"SELECT count(*) FROM {scan(world, table)} WHERE _exported_at < {happened}"
            ).fetchone()[0]
            assert early == 0, table


def test_audience_shaping_cases_are_present(world):
    as_of = f"TIMESTAMP '{AS_OF}'"
    with duckdb.connect() as con:
        def count(sql: str) -> int:
            return con.execute(sql).fetchone()[0]

        orders = scan(world, "store/orders")
        per_customer = (f"(SELECT customer_id, count(*) AS n, max(ordered_at) AS last_at "
                        f"FROM {orders} GROUP BY 1)")
        assert count(f"SELECT count(*) FROM {per_customer} WHERE n = 1 AND last_at "
                     f"BETWEEN {as_of} - INTERVAL 45 DAY AND {as_of} - INTERVAL 21 DAY") > 50
        for low, high in [(60, 90), (90, 120), (120, 730)]:
            assert count(f"SELECT count(*) FROM {per_customer} WHERE last_at "
                         f"BETWEEN {as_of} - INTERVAL {high} DAY AND {as_of} - INTERVAL {low} DAY") > 20
        assert count(f"SELECT count(*) FROM {per_customer} WHERE last_at > {as_of} - INTERVAL 14 DAY") > 50
        events = scan(world, "web_events/web_events")
        for window in ["occurred_at > {t} - INTERVAL 1 DAY",
                       "occurred_at BETWEEN {t} - INTERVAL 3 DAY AND {t} - INTERVAL 1 DAY"]:
            condition = window.format(t=as_of)
            for side in ["cart_value >= 100", "cart_value < 100"]:
                assert count(f"SELECT count(*) FROM {events} WHERE event_name = 'added_to_cart' "
                             f"AND {condition} AND {side}") > 5
        assert count(f"SELECT count(*) FROM {events} WHERE event_name = 'product_viewed' "
                     "AND cart_value IS NOT NULL") == 0
        subscriptions = scan(world, "subscriptions/subscription_events")
        assert count(f"SELECT count(*) FROM (SELECT subscription_id FROM {subscriptions} "
                     "GROUP BY 1 HAVING list(status ORDER BY changed_at)[-2:] = "
                     "['cancelled', 'active'])") > 0, "reactivations"
        assert count(f"SELECT count(*) FROM {scan(world, 'returns/returns')} "
                     "WHERE status IN ('requested', 'approved', 'received')") > 0


def test_awkward_real_world_cases_are_present(world):
    with duckdb.connect() as con:
        def count(table: str, where: str) -> int:
            return con.execute(f"SELECT count(*) FROM {scan(world, table)} WHERE {where}").fetchone()[0]

        customers = "store/customers"
        assert count(customers, "email <> lower(trim(email))") > 0
        assert count(customers, "email <> '' AND email <> trim(email)") > 0
        assert count(customers, "phone LIKE '(%) %-%'") > 0
        assert count(customers, "phone LIKE '020 %'") > 0
        assert count(customers, "phone LIKE '+44 %'") > 0
        assert count(customers, "phone LIKE '0044%'") > 0
        assert count(customers, "phone = '' OR trim(phone) = ''") > 0
        assert count(customers, "first_name = ''") > 0
        duplicated = con.execute(
            f"SELECT count(*) FROM (SELECT lower(trim(email)) FROM {scan(world, customers)} "
            "WHERE trim(email) <> '' GROUP BY 1 HAVING count(DISTINCT customer_id) > 1)"
        ).fetchone()[0]
        assert duplicated > 0, "duplicate emails across customers"
        late = con.execute(
            f"SELECT count(*) FROM {scan(world, customers)} AS older "
            f"JOIN {scan(world, customers)} AS newer USING (customer_id) "
            "WHERE older.updated_at < newer.updated_at AND older._exported_at > newer._exported_at"
        ).fetchone()[0]
        assert late > 0, "an older export arriving after a newer one"
        assert count("loyalty/loyalty_accounts", "points_balance IS NULL") > 0
        assert count("loyalty/loyalty_accounts", "email NOT IN (SELECT lower(trim(email)) FROM "
                     f"{scan(world, customers)})") > 0, "orphan loyalty accounts"
        changed = con.execute(
            f"SELECT count(*) FROM {scan(world, customers)} AS before "
            f"JOIN {scan(world, customers)} AS after USING (customer_id) "
            "WHERE before.updated_at < after.updated_at AND before.email <> after.email "
            f"AND before.email IN (SELECT lower(trim(email)) FROM {scan(world, 'loyalty/loyalty_accounts')})"
        ).fetchone()[0]
        assert changed > 0, "a changed email that loyalty still knows by the old address"
        refund_history = con.execute(
            f"SELECT count(*) FROM {scan(world, 'store/orders')} AS paid "
            f"JOIN {scan(world, 'store/orders')} AS refunded USING (order_id) "
            "WHERE paid.financial_status = 'paid' AND refunded.financial_status = 'refunded' "
            "AND paid._exported_at < refunded._exported_at"
        ).fetchone()[0]
        assert refund_history > 0, "an order exported again when refunded"
        assert count("subscriptions/subscription_events", "store_customer_id = ''") > 0
        assert count("back_in_stock/back_in_stock_requests", "notified_at IS NULL") > 0
        assert count("web_events/web_events", "customer_id = '' AND email <> ''") > 0


def test_same_seed_gives_same_rows_and_another_seed_does_not(world, tmp_path):
    again = tmp_path / "again"
    assert run_generator(again).returncode == 0
    other = tmp_path / "other"
    assert run_generator(other, seed=8).returncode == 0
    for table in EXPECTED:
        assert rows(again, table) == rows(world, table), table
    assert rows(other, "store/customers") != rows(world, "store/customers")
    assert rows(other, "store/orders") != rows(world, "store/orders")


def test_parts_do_not_change_the_rows_and_reruns_replace_old_parts(world, tmp_path, monkeypatch):
    """The 10M-customer run writes many parts; splitting must not change a single row."""
    generator = load_generator()
    monkeypatch.setattr(generator, "PART_SIZE", 700)
    out = tmp_path / "parts"
    generator.generate(N, 7, out, generator.parse_as_of(AS_OF), threads=2)
    assert len(list((out / "store" / "customers").glob("*.parquet"))) == 3
    for table in EXPECTED:
        assert rows(out, table) == rows(world, table), table
    generator.generate(500, 7, out, generator.parse_as_of(AS_OF), threads=2)
    assert len(list((out / "store" / "customers").glob("*.parquet"))) == 1
    with duckdb.connect() as con:
        assert con.execute(
            f"SELECT count(DISTINCT customer_id) FROM {scan(out, 'store/customers')}"
        ).fetchone()[0] == 500


def test_row_counts_scale_with_customers(world, tmp_path):
    bigger = tmp_path / "bigger"
    assert run_generator(bigger, customers=2 * N).returncode == 0
    with duckdb.connect() as con:
        for table in EXPECTED:
            small = con.execute(f"SELECT count(*) FROM {scan(world, table)}").fetchone()[0]
            large = con.execute(f"SELECT count(*) FROM {scan(bigger, table)}").fetchone()[0]
            assert small > 0, table
            assert 1.7 < large / small < 2.3, f"{table}: {small} -> {large}"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--customers", "0"], "--customers must be between"),
        (["--customers", "ten"], "invalid int value"),
        (["--customers", "10", "--seed", "-1"], "--seed must be between"),
        (["--customers", "10", "--as-of", "yesterday"], "--as-of 'yesterday' is not a timestamp"),
        (["--customers", "10", "--memory-limit", "lots"], "error: could not generate into"),
        ([], "--customers"),
    ],
)
def test_bad_arguments_exit_non_zero_with_a_clear_message(tmp_path, arguments, message):
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path / "out"), *arguments],
        capture_output=True, text=True, cwd=REPO,
    )
    assert completed.returncode != 0
    assert message in completed.stderr
    assert "Traceback" not in completed.stderr
    assert not list((tmp_path / "out").rglob("*.parquet"))
