"""Deterministic generator of the raw source exports, as Parquet, at any scale.

    .venv/bin/python scripts/generate_sources.py --customers 100000 --seed 42 \
        --out data/generated --as-of '2026-11-20 12:00:00'

Writes `<out>/<source>/<table>/part-<k>.parquet` with exactly the columns and types of the
raw source contract (the same shapes as the seeds). Every value is a pure function of
(seed, row number, as-of), computed inside DuckDB from `range()` and `hash()`, so the same
arguments always give the same rows and memory stays bounded: customers are generated in
parts of PART_SIZE, and each part is written and dropped before the next one starts.

The world is anchored on --as-of (default: now, UTC, to the second): orders over two years,
one-off buyers 21-45 days ago, lapsed customers, recent purchasers, carts in the last days on
both sides of 100, subscriptions with pauses/cancellations/reactivations, loyalty tiers,
open and closed returns, reviews, back-in-stock requests, and at a small rate the awkward
cases the models must survive (odd email casing and spaces, national phone formats, blanks,
duplicate emails, re-exports, older exports arriving late, orphan emails).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import time
from pathlib import Path

import duckdb

PART_SIZE = 1_000_000
MAX_CUSTOMERS = 999_999_999  # customer ids are 'C' + 9 digits
MAX_ORDERS_PER_CUSTOMER = 20  # order keys are customer * 20 + ordinal

# The raw source contract (sources.md): source -> table -> ordered (column, type).
SCHEMA: dict[str, dict[str, list[tuple[str, str]]]] = {
    "store": {
        "customers": [
            ("customer_id", "VARCHAR"), ("email", "VARCHAR"), ("phone", "VARCHAR"),
            ("first_name", "VARCHAR"), ("last_name", "VARCHAR"), ("country_code", "VARCHAR"),
            ("accepts_marketing", "BOOLEAN"), ("created_at", "TIMESTAMP"),
            ("updated_at", "TIMESTAMP"), ("_exported_at", "TIMESTAMP"),
        ],
        "orders": [
            ("order_id", "VARCHAR"), ("customer_id", "VARCHAR"), ("email", "VARCHAR"),
            ("ordered_at", "TIMESTAMP"), ("financial_status", "VARCHAR"),
            ("total_price", "DECIMAL(12,2)"), ("currency", "VARCHAR"),
            ("_exported_at", "TIMESTAMP"),
        ],
        "order_lines": [
            ("order_line_id", "VARCHAR"), ("order_id", "VARCHAR"), ("product_id", "VARCHAR"),
            ("product_category", "VARCHAR"), ("quantity", "INTEGER"),
            ("unit_price", "DECIMAL(12,2)"), ("_exported_at", "TIMESTAMP"),
        ],
        "refunds": [
            ("refund_id", "VARCHAR"), ("order_id", "VARCHAR"), ("refunded_at", "TIMESTAMP"),
            ("amount", "DECIMAL(12,2)"), ("_exported_at", "TIMESTAMP"),
        ],
    },
    "subscriptions": {
        "subscription_events": [
            ("event_id", "VARCHAR"), ("subscription_id", "VARCHAR"),
            ("customer_email", "VARCHAR"), ("store_customer_id", "VARCHAR"),
            ("status", "VARCHAR"), ("changed_at", "TIMESTAMP"), ("_exported_at", "TIMESTAMP"),
        ],
    },
    "loyalty": {
        "loyalty_accounts": [
            ("account_id", "VARCHAR"), ("email", "VARCHAR"), ("points_balance", "INTEGER"),
            ("vip_tier", "VARCHAR"), ("updated_at", "TIMESTAMP"), ("_exported_at", "TIMESTAMP"),
        ],
    },
    "returns": {
        "returns": [
            ("return_id", "VARCHAR"), ("order_id", "VARCHAR"), ("customer_email", "VARCHAR"),
            ("status", "VARCHAR"), ("updated_at", "TIMESTAMP"), ("_exported_at", "TIMESTAMP"),
        ],
    },
    "reviews": {
        "reviews": [
            ("review_id", "VARCHAR"), ("customer_email", "VARCHAR"), ("product_id", "VARCHAR"),
            ("rating", "INTEGER"), ("submitted_at", "TIMESTAMP"), ("_exported_at", "TIMESTAMP"),
        ],
    },
    "back_in_stock": {
        "back_in_stock_requests": [
            ("request_id", "VARCHAR"), ("email", "VARCHAR"), ("phone", "VARCHAR"),
            ("product_id", "VARCHAR"), ("requested_at", "TIMESTAMP"),
            ("notified_at", "TIMESTAMP"), ("_exported_at", "TIMESTAMP"),
        ],
    },
    "web_events": {
        "web_events": [
            ("event_id", "VARCHAR"), ("anonymous_id", "VARCHAR"), ("customer_id", "VARCHAR"),
            ("email", "VARCHAR"), ("event_name", "VARCHAR"), ("product_id", "VARCHAR"),
            ("cart_value", "DECIMAL(12,2)"), ("occurred_at", "TIMESTAMP"),
            ("_exported_at", "TIMESTAMP"),
        ],
    },
}

# Business timestamps are naive local times in the source's zone (sources.md).
SOURCE_ZONES = {
    "store": "UTC", "subscriptions": "America/New_York", "loyalty": "Europe/London",
    "returns": "UTC", "reviews": "UTC", "back_in_stock": "America/Los_Angeles",
    "web_events": "UTC",
}

FIRST_NAMES = [
    "Olivia", "Liam", "Emma", "Noah", "Amelia", "Oliver", "Ava", "Elijah", "Sophia", "James",
    "Isabella", "William", "Mia", "Lucas", "Charlotte", "Henry", "Harper", "Theodore", "Evelyn",
    "Jack", "Chloé", "Mateo", "Zoë", "Aarav", "Fatima", "Hiroshi", "Ingrid", "José", "Siobhan",
    "Kwame", "Priya", "Björn", "Leïla", "Tomás", "Mei", "Dmitri", "Nia", "Rafael", "Sven", "Yara",
]
LAST_NAMES = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Taylor", "Thomas", "Moore", "Jackson", "Martin", "Lee", "Walker", "Hall",
    "Allen", "Young", "O'Brien", "Müller", "Nguyen", "Kowalski", "Dubois", "Rossi", "Novak",
    "Okafor", "Tanaka", "Singh", "Fernández", "Andersen", "MacLeod", "Haddad", "Cohen", "Kim",
    "Schmidt", "Silva", "Ivanova", "Murphy",
]
DOMAINS = ["example.com", "example.org", "example.net", "mail.example.com", "shop.example.org"]
CATEGORIES = ["apparel", "footwear", "accessories", "home", "beauty", "outdoor"]
PRODUCT_COUNT = 480

DAY = 86_400


def sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def sql_list(values: list[str]) -> str:
    return "[" + ", ".join(sql_string(v) for v in values) + "]"


def define_macros(con: duckdb.DuckDBPyConnection, seed: int, as_of: dt.datetime) -> None:
    """Pure functions of (seed, key): the only source of variety in the generated world."""
    as_of_sql = f"TIMESTAMP '{as_of:%Y-%m-%d %H:%M:%S}'"
    macros = [
        # Uniform in [0, 1), a pure function of (seed, key, salt).
        f"rnd(k, salt) AS (hash({seed}, k, salt) % 1000000007)::DOUBLE / 1000000007",
        "rint(k, salt, lo, hi) AS (lo + floor(rnd(k, salt) * (hi - lo + 1)))::BIGINT",
        "pick(options, r) AS options[1 + floor(r * len(options))::INTEGER]",
        # UTC instant `secs` seconds before as-of, and its naive local time in `zone`.
        f"ago(secs) AS {as_of_sql} - to_seconds(greatest(secs, 0)::BIGINT)",
        "local_ago(secs, zone) AS timezone(zone, ago(secs) AT TIME ZONE 'UTC')",
        # Exports land shortly before as-of, after every business timestamp (all >= 30 min old).
        "export_at(k, salt) AS ago(120 + floor(rnd(k, salt) * 1500))",
        "late_export_at(k, salt) AS ago(30 + floor(rnd(k, salt) * 80))",
        "customer_code(c) AS lpad(c::VARCHAR, 9, '0')",
        f"anonymous_id_of(k) AS 'A' || lpad((hash({seed}, k, 'anon') % 10000000000)::VARCHAR, 10, '0')",
        f"first_name_of(c) AS pick({sql_list(FIRST_NAMES)}, rnd(c, 'first'))",
        f"last_name_of(c) AS pick({sql_list(LAST_NAMES)}, rnd(c, 'last'))",
        # ASCII local part so every system agrees on the address once normalized.
        "email_of(c) AS lower(regexp_replace(strip_accents(first_name_of(c) || '.' || "
        "last_name_of(c)), '[^A-Za-z.]', '', 'g')) || c::VARCHAR || '@' || "
        f"pick({sql_list(DOMAINS)}, rnd(c, 'domain'))",
        "product_id_of(p) AS 'P' || lpad(p::VARCHAR, 5, '0')",
        f"category_of(p) AS {sql_list(CATEGORIES)}[1 + (p % {len(CATEGORIES)})::INTEGER]",
        "unit_price_of(p) AS (4.99 + floor(rnd(p, 'price') * 140))::DECIMAL(12,2)",
        f"line_product(okey, k) AS rint(okey * 10 + k, 'product', 1, {PRODUCT_COUNT})",
        "line_quantity(okey, k, vip) AS rint(okey * 10 + k, 'qty', 1, CASE WHEN vip "
        "THEN 5 ELSE 2 END)::INTEGER",
        # Phones in the formats stores really hold: E.164, national, spaced, 00-prefixed.
        "phone_of(c, country) AS CASE "
        "WHEN country IN ('US', 'CA') THEN pick(["
        "  '+1' || (212 + (c // 8000000) % 700)::VARCHAR || (2000000 + c % 8000000)::VARCHAR,"
        "  '(' || (212 + (c // 8000000) % 700)::VARCHAR || ') ' || "
        "(200 + (c % 8000000) // 10000)::VARCHAR || '-' || lpad((c % 10000)::VARCHAR, 4, '0'),"
        "  (212 + (c // 8000000) % 700)::VARCHAR || '-' || "
        "(200 + (c % 8000000) // 10000)::VARCHAR || '-' || lpad((c % 10000)::VARCHAR, 4, '0'),"
        "  '1 ' || (212 + (c // 8000000) % 700)::VARCHAR || '.' || "
        "(200 + (c % 8000000) // 10000)::VARCHAR || '.' || lpad((c % 10000)::VARCHAR, 4, '0')"
        "], rnd(c, 'phone_fmt')) "
        "WHEN country = 'GB' AND rnd(c, 'gb_line') < 0.3 THEN pick(["
        "  '020 ' || (7000 + (c // 10000) % 3000)::VARCHAR || ' ' || lpad((c % 10000)::VARCHAR, 4, '0'),"
        "  '+44 20 ' || (7000 + (c // 10000) % 3000)::VARCHAR || ' ' || lpad((c % 10000)::VARCHAR, 4, '0'),"
        "  '0044 20 ' || (7000 + (c // 10000) % 3000)::VARCHAR || ' ' || lpad((c % 10000)::VARCHAR, 4, '0')"
        "], rnd(c, 'phone_fmt')) "
        "WHEN country = 'GB' THEN pick(["
        "  '+447' || lpad((c % 1000000000)::VARCHAR, 9, '0'),"
        "  '07' || substr(lpad((c % 1000000000)::VARCHAR, 9, '0'), 1, 3) || ' ' || "
        "substr(lpad((c % 1000000000)::VARCHAR, 9, '0'), 4),"
        "  '+44 7' || substr(lpad((c % 1000000000)::VARCHAR, 9, '0'), 1, 3) || ' ' || "
        "substr(lpad((c % 1000000000)::VARCHAR, 9, '0'), 4),"
        "  '0044 7' || substr(lpad((c % 1000000000)::VARCHAR, 9, '0'), 1, 3) || ' ' || "
        "substr(lpad((c % 1000000000)::VARCHAR, 9, '0'), 4)"
        "], rnd(c, 'phone_fmt')) "
        "WHEN country = 'DE' THEN pick(["
        "  '+4930' || lpad((c % 100000000)::VARCHAR, 8, '0'),"
        "  '030 ' || lpad((c % 100000000)::VARCHAR, 8, '0')"
        "], rnd(c, 'phone_fmt')) "
        "ELSE pick(["
        "  '+336' || lpad((c % 100000000)::VARCHAR, 8, '0'),"
        "  '06 ' || substr(lpad((c % 100000000)::VARCHAR, 8, '0'), 1, 2) || ' ' || "
        "substr(lpad((c % 100000000)::VARCHAR, 8, '0'), 3, 2) || ' ' || "
        "substr(lpad((c % 100000000)::VARCHAR, 8, '0'), 5, 2) || ' ' || "
        "substr(lpad((c % 100000000)::VARCHAR, 8, '0'), 7, 2)"
        "], rnd(c, 'phone_fmt')) END",
        # How other systems spell the same address: mostly as-is, sometimes shouted or padded.
        "respelled(email, k, salt) AS CASE WHEN rnd(k, salt) < 0.04 THEN upper(email) "
        "WHEN rnd(k, salt) < 0.06 THEN ' ' || email || ' ' ELSE email END",
    ]
    for macro in macros:
        con.execute(f"CREATE OR REPLACE MACRO {macro}")


# One row per customer with everything later tables derive from. Segments drive the
# audiences: never ordered, once 21-45 d ago, lapsed 60/90/120+ d, recent, VIP, and the rest.
CUSTOMER_PROFILE_SQL = """
CREATE OR REPLACE TEMP TABLE profile AS
WITH base AS (
    SELECT
        c,
        'C' || customer_code(c) AS customer_id,
        pick(['US', 'US', 'US', 'US', 'US', 'US', 'GB', 'GB', 'GB', 'CA', 'DE', 'FR'],
             rnd(c, 'country')) AS country_code,
        rnd(c, 'segment') AS seg,
        -- a web session (carts) for some customers, hours before as-of
        rnd(c, 'web') < 0.18 AS has_session,
        CASE
            WHEN rnd(c, 'session_age') < 0.40 THEN 3600 + floor(rnd(c, 'session_s') * 79200)
            WHEN rnd(c, 'session_age') < 0.75 THEN 90000 + floor(rnd(c, 'session_s') * 165600)
            ELSE 262800 + floor(rnd(c, 'session_s') * 950400)
        END AS session_secs
    FROM range({lo}, {hi}) AS ids(c)
),
segmented AS (
    SELECT
        *,
        -- a cart followed by a purchase: the order lands 30 min after the session
        has_session AND session_secs < 3 * 86400 AND rnd(c, 'converted') < 0.2 AS converted,
        CASE
            WHEN seg < 0.10 THEN 'never'
            WHEN seg < 0.24 THEN 'once_21_45'
            WHEN seg < 0.32 THEN 'lapsed_60'
            WHEN seg < 0.40 THEN 'lapsed_90'
            WHEN seg < 0.56 THEN 'lapsed_120'
            WHEN seg < 0.76 THEN 'recent'
            WHEN seg < 0.86 THEN 'mid'
            WHEN seg < 0.90 THEN 'vip'
            ELSE 'random'
        END AS segment
    FROM base
),
ordering AS (
    SELECT
        *,
        CASE
            WHEN converted THEN greatest(rint(c, 'n_orders', 1, 4), 1)
            WHEN segment = 'never' THEN 0
            WHEN segment = 'once_21_45' THEN 1
            WHEN segment = 'vip' THEN rint(c, 'n_orders', 6, 15)
            WHEN segment = 'recent' THEN rint(c, 'n_orders', 1, 6)
            ELSE rint(c, 'n_orders', 1, 4)
        END AS n_orders,
        CASE
            WHEN converted THEN session_secs - 1800
            WHEN segment = 'once_21_45' THEN 21.5 * 86400 + floor(rnd(c, 'last') * 23 * 86400)
            WHEN segment = 'lapsed_60' THEN 60.5 * 86400 + floor(rnd(c, 'last') * 29 * 86400)
            WHEN segment = 'lapsed_90' THEN 90.5 * 86400 + floor(rnd(c, 'last') * 29 * 86400)
            WHEN segment = 'lapsed_120' THEN 121 * 86400 + floor(rnd(c, 'last') * 560 * 86400)
            WHEN segment = 'recent' THEN 7200 + floor(rnd(c, 'last') * 20 * 86400)
            WHEN segment = 'mid' THEN 46 * 86400 + floor(rnd(c, 'last') * 14 * 86400)
            WHEN segment = 'vip' THEN 7200 + floor(rnd(c, 'last') * 40 * 86400)
            ELSE 7200 + floor(rnd(c, 'last') * 700 * 86400)
        END AS last_order_secs
    FROM segmented
),
dated AS (
    SELECT
        *,
        -- the first order: up to two years back from the last one
        CASE WHEN n_orders > 1
            THEN last_order_secs + floor(rnd(c, 'first') * (730 * 86400 - last_order_secs))
            ELSE last_order_secs END AS first_order_secs
    FROM ordering
)
SELECT
    *,
    CASE WHEN n_orders = 0 THEN 3 * 86400 + floor(rnd(c, 'created') * 800 * 86400)
         ELSE greatest(first_order_secs, last_order_secs) + 3600
              + floor(rnd(c, 'created') * 60 * 86400) END AS created_secs,
    CASE WHEN rnd(c, 'dup_email') < 0.003 AND c > 1 THEN email_of(c - 1)  -- shared inbox
         WHEN rnd(c, 'no_email') < 0.004 THEN ''
         ELSE email_of(c) END AS clean_email,
    -- the address before a change; other systems may still only know this one
    CASE WHEN rnd(c, 'email_change') < 0.005 AND rnd(c, 'no_email') >= 0.004
         THEN 'old.' || email_of(c) END AS previous_email,
    CASE WHEN rnd(c, 'no_phone') < 0.30 THEN ''
         WHEN rnd(c, 'no_phone') < 0.31 THEN '   '
         ELSE phone_of(c, country_code) END AS phone,
    rnd(c, 'marketing') < 0.72 AS accepts_marketing,
    CASE country_code WHEN 'GB' THEN 'GBP' WHEN 'CA' THEN 'CAD'
         WHEN 'DE' THEN 'EUR' WHEN 'FR' THEN 'EUR' ELSE 'USD' END AS currency
FROM dated
"""

# The store's email as exported: a few odd casings and stray spaces.
STORE_EMAIL = """CASE WHEN rnd(c, 'email_case') < 0.02 AND clean_email <> ''
    THEN ' ' || upper(substr(clean_email, 1, 1)) || substr(clean_email, 2, 3)
         || upper(substr(clean_email, 5, 1))
         || substr(clean_email, 6) || ' '
    ELSE clean_email END"""

ORDERS_SQL = """
CREATE OR REPLACE TEMP TABLE part_orders AS
SELECT
    c,
    customer_id,
    clean_email,
    currency,
    segment = 'vip' AS vip,
    c * {max_orders} + k AS okey,
    'O' || customer_code(c) || lpad(k::VARCHAR, 2, '0') AS order_id,
    -- k = 0 is the latest order; the others spread back to the first one
    CASE WHEN k = 0 THEN last_order_secs
         ELSE last_order_secs + floor((first_order_secs - last_order_secs) * k / (n_orders - 1))
    END AS order_secs,
    rint(c * {max_orders} + k, 'n_lines', 1, 3) AS n_lines,
    CASE WHEN rnd(c * {max_orders} + k, 'status') < 0.90 THEN 'paid'
         WHEN rnd(c * {max_orders} + k, 'status') < 0.94 THEN 'partially_refunded'
         WHEN rnd(c * {max_orders} + k, 'status') < 0.975 THEN 'refunded'
         ELSE 'voided' END AS financial_status
FROM profile, unnest(range(n_orders)) AS ordinals(k)
WHERE n_orders > 0
"""

# Each table: (source, table, SELECT over the part's temp tables). Columns in SCHEMA order.
TABLE_QUERIES: list[tuple[str, str, str]] = [
    ("store", "customers", f"""
        WITH exports AS (
            -- the current export
            SELECT c, 0 AS version, {STORE_EMAIL} AS export_email, phone AS export_phone,
                   first_name_of(c) AS export_first_name, accepts_marketing AS export_marketing,
                   7200 + floor(rnd(c, 'updated') * (created_secs - 14400)) AS updated_secs
            FROM profile
            UNION ALL
            -- an older snapshot arriving late: must not revert the current one
            SELECT c, 1, coalesce(previous_email, clean_email), phone, upper(first_name_of(c)),
                   NOT accepts_marketing, created_secs
            FROM profile WHERE rnd(c, 'late_export') < 0.01
            UNION ALL
            -- a newer snapshot with the phone blanked: a blank must not wipe a known value
            SELECT c, 2, clean_email, '', first_name_of(c), accepts_marketing,
                   3600 + floor(rnd(c, 'reexport_s') * 1800)
            FROM profile WHERE rnd(c, 'reexport') < 0.02 AND trim(phone) <> ''
            UNION ALL
            -- the snapshot from before an email change, exported back then
            SELECT c, 3, previous_email, phone, first_name_of(c), accepts_marketing,
                   created_secs - 600
            FROM profile WHERE previous_email IS NOT NULL
        )
        SELECT
            'C' || customer_code(c),
            export_email,
            export_phone,
            CASE WHEN rnd(c, 'blank_name') < 0.01 THEN '' ELSE export_first_name END,
            last_name_of(c),
            country_code,
            export_marketing,
            ago(created_secs),
            ago(updated_secs),
            -- one export time per snapshot: a superseded snapshot went out when it was current
            CASE WHEN version = 1 THEN late_export_at(c, 'x1')
                 WHEN version = 3 THEN ago(created_secs - 3600)
                 WHEN version = 0 AND rnd(c, 'reexport') < 0.02 AND trim(phone) <> ''
                     THEN ago(updated_secs - 1800)
                 ELSE export_at(c, 'x0') END
        FROM exports JOIN profile USING (c)
        ORDER BY c, version
    """),
    ("store", "orders", """
        WITH snapshots AS (
            SELECT *, financial_status AS exported_status, export_at(okey, 'x') AS exported_at
            FROM part_orders
            UNION ALL
            -- a refunded order was first exported as paid, soon after it was placed
            SELECT *, 'paid', ago(order_secs - 1800)
            FROM part_orders
            WHERE financial_status IN ('partially_refunded', 'refunded') AND order_secs > 86400
              AND rnd(okey, 'paid_snapshot') < 0.5
        )
        SELECT order_id, customer_id,
               CASE WHEN rnd(okey, 'order_email') < 0.01 THEN '' ELSE clean_email END,
               ago(order_secs), exported_status,
               list_sum([line_quantity(okey, j, vip) * unit_price_of(line_product(okey, j))
                         FOR j IN range(n_lines)])::DECIMAL(12,2),
               currency, exported_at
        FROM snapshots ORDER BY okey, exported_at
    """),
    ("store", "order_lines", """
        SELECT order_id || '-' || (j + 1)::VARCHAR, order_id,
               product_id_of(line_product(okey, j)), category_of(line_product(okey, j)),
               line_quantity(okey, j, vip), unit_price_of(line_product(okey, j)),
               export_at(okey, 'x')
        FROM part_orders, unnest(range(n_lines)) AS lines(j)
        ORDER BY okey, j
    """),
    ("store", "refunds", """
        WITH totals AS (
            SELECT *, list_sum([line_quantity(okey, j, vip) * unit_price_of(line_product(okey, j))
                                FOR j IN range(n_lines)]) AS total
            FROM part_orders WHERE financial_status IN ('partially_refunded', 'refunded')
        )
        SELECT 'RF' || substr(order_id, 2), order_id,
               ago(order_secs - least(order_secs - 1800, 86400 + floor(rnd(okey, 'refund_s') * 14 * 86400))),
               CASE WHEN financial_status = 'refunded' THEN total
                    ELSE greatest(0.01, total * (0.1 + 0.5 * rnd(okey, 'refund_share'))) END::DECIMAL(12,2),
               export_at(okey, 'xr')
        FROM totals ORDER BY okey
    """),
    ("subscriptions", "subscription_events", """
        WITH subscribers AS (
            SELECT c, customer_id, clean_email, rnd(c, 'sub_orphan') < 0.01 AS orphan,
                   pick([['active'], ['active'], ['active'], ['active'], ['active', 'paused'],
                         ['active', 'paused'], ['active', 'cancelled'], ['active', 'cancelled'],
                         ['active', 'cancelled', 'active'], ['active', 'paused', 'active']],
                        rnd(c, 'sub_path')) AS path,
                   30 * 86400 + floor(rnd(c, 'sub_start') * 600 * 86400) AS start_secs
            FROM profile WHERE rnd(c, 'subscriber') < 0.25 AND clean_email <> ''
        ),
        events AS (
            SELECT *, unnest(range(len(path))) AS j FROM subscribers
        )
        SELECT 'SE' || customer_code(c) || '-' || (j + 1)::VARCHAR,
               'S' || customer_code(c),
               CASE WHEN orphan THEN 'subscriber' || c::VARCHAR || '@example.net'
                    ELSE respelled(clean_email, c * 10 + j, 'sub_email') END,
               CASE WHEN orphan OR rnd(c, 'sub_no_store_id') < 0.3 THEN '' ELSE customer_id END,
               path[j + 1],
               local_ago(floor(start_secs * (len(path) - j) / len(path)) + 3600, 'America/New_York'),
               -- the first event of a changed subscription sometimes arrives late
               CASE WHEN j = 0 AND len(path) > 1 AND rnd(c, 'sub_late') < 0.05
                    THEN late_export_at(c, 'sx') ELSE export_at(c * 10 + j, 'sx') END
        FROM events ORDER BY c, j
    """),
    ("loyalty", "loyalty_accounts", """
        WITH accounts AS (
            SELECT c, 'L' || customer_code(c) AS account_id,
                   -- after an email change loyalty may still hold the old address
                   coalesce(previous_email, clean_email) AS account_email,
                   CASE WHEN segment = 'vip' THEN rint(c, 'points', 4000, 40000)
                        ELSE rint(c, 'points', 0, 9000) END AS points,
                   -- a few accounts stopped syncing 10+ days ago: stale, held out downstream
                   rnd(c, 'loy_stale') < 0.003 AS stale,
                   CASE WHEN stale THEN 11 * 86400 + floor(rnd(c, 'loy_updated') * 30 * 86400)
                        ELSE 3600 + floor(rnd(c, 'loy_updated') * 120 * 86400) END AS updated_secs
            FROM profile WHERE rnd(c, 'loyalty') < 0.40 AND clean_email <> ''
            UNION ALL
            -- accounts whose email matches no store customer
            SELECT c, 'LX' || customer_code(c), 'member' || c::VARCHAR || '@example.net',
                   rint(c, 'points', 0, 900), false, 3600 + floor(rnd(c, 'loy_updated') * 30 * 86400)
            FROM profile WHERE rnd(c, 'loyalty_orphan') < 0.005
        ),
        exports AS (
            SELECT account_id, 0 AS version, points AS export_points, updated_secs AS export_secs
            FROM accounts
            UNION ALL  -- older, late: fewer points, must not revert
            SELECT account_id, 1, points // 2, updated_secs + 30 * 86400 FROM accounts
            WHERE rnd(c, 'loy_late') < 0.04 AND NOT stale
            UNION ALL  -- newer with blanks: must not wipe the known tier and points
            SELECT account_id, 2, NULL, greatest(updated_secs // 2, 3600) FROM accounts
            WHERE rnd(c, 'loy_blank') < 0.03 AND updated_secs > 7200 AND NOT stale
        )
        SELECT account_id,
               respelled(account_email, c, 'loy_email'),
               CASE WHEN version = 0 AND rnd(c, 'null_points') < 0.02 THEN NULL
                    ELSE export_points END::INTEGER,
               CASE WHEN export_points IS NULL OR rnd(c, 'blank_tier') < 0.03 THEN ''
                    WHEN export_points < 1000 THEN 'bronze' WHEN export_points < 5000 THEN 'silver'
                    WHEN export_points < 15000 THEN 'gold' ELSE 'platinum' END,
               local_ago(export_secs, 'Europe/London'),
               -- one export time per snapshot: a superseded snapshot went out when it was current
               CASE WHEN version = 1 THEN late_export_at(c, 'lx')
                    WHEN stale THEN ago(updated_secs - 86400)
                    WHEN version = 0 AND rnd(c, 'loy_blank') < 0.03 AND updated_secs > 7200
                        THEN ago(updated_secs - 1800)
                    ELSE export_at(c, 'lx') END
        FROM exports JOIN accounts USING (account_id)
        ORDER BY account_id, version
    """),
    ("returns", "returns", """
        WITH returned AS (
            SELECT okey, order_id, clean_email, order_secs,
                   -- recent orders are more often still open
                   CASE WHEN order_secs < 30 * 86400
                        THEN pick([1, 2, 3, 4, 4, 5], rnd(okey, 'ret_stage'))
                        ELSE pick([4, 4, 4, 4, 5, 3], rnd(okey, 'ret_stage')) END AS stages,
                   greatest(order_secs - 86400 - floor(rnd(okey, 'ret_start') * 10 * 86400),
                            order_secs * 0.6) AS start_secs
            FROM part_orders
            WHERE financial_status IN ('paid', 'partially_refunded') AND order_secs > 2 * 86400
              AND rnd(okey, 'returned') < 0.06 AND clean_email <> ''
        ),
        snapshots AS (
            SELECT *, unnest(range(CASE WHEN stages = 5 THEN 2 ELSE stages END)) AS j
            FROM returned
        )
        SELECT 'RT' || substr(order_id, 2), order_id,
               respelled(clean_email, okey, 'ret_email'),
               CASE WHEN stages = 5 AND j = 1 THEN 'rejected'
                    ELSE ['requested', 'approved', 'received', 'refunded'][j + 1] END,
               ago(start_secs - j * least(2 * 86400, (start_secs - 3600) / 5)),
               -- earlier stages went out when they happened; the latest is in the last export
               CASE WHEN j = CASE WHEN stages = 5 THEN 1 ELSE stages - 1 END
                    THEN export_at(okey, 'rx')
                    ELSE ago(start_secs - j * least(2 * 86400, (start_secs - 3600) / 5) - 1800) END
        FROM snapshots ORDER BY okey, j
    """),
    ("reviews", "reviews", """
        SELECT 'RV' || substr(order_id, 2),
               respelled(clean_email, okey, 'rev_email'),
               product_id_of(line_product(okey, 0)),
               pick([5, 5, 5, 4, 4, 4, 3, 2, 1], rnd(okey, 'rating'))::INTEGER,
               ago(order_secs - 4 * 86400
                   - floor(rnd(okey, 'rev_s') * least(10 * 86400, order_secs - 5 * 86400))),
               export_at(okey, 'vx')
        FROM part_orders
        WHERE order_secs > 6 * 86400 AND rnd(okey, 'reviewed') < 0.08 AND clean_email <> ''
        ORDER BY okey
    """),
    ("back_in_stock", "back_in_stock_requests", f"""
        WITH requests AS (
            SELECT c, clean_email, phone, unnest(range(rint(c, 'bis_n', 1, 2))) AS j
            FROM profile WHERE rnd(c, 'bis') < 0.06
        ),
        timed AS (
            SELECT *, c * 10 + j AS rkey,
                   7200 + floor(rnd(c * 10 + j, 'bis_s') * 90 * 86400) AS requested_secs
            FROM requests
        )
        SELECT 'B' || customer_code(c) || '-' || (j + 1)::VARCHAR,
               CASE WHEN rnd(rkey, 'bis_no_email') < 0.10 THEN ''
                    ELSE respelled(clean_email, rkey, 'bis_email') END,
               CASE WHEN rnd(rkey, 'bis_phone') < 0.5 THEN phone ELSE '' END,
               product_id_of(rint(rkey, 'bis_product', 1, {PRODUCT_COUNT})),
               local_ago(requested_secs, 'America/Los_Angeles'),
               CASE WHEN rnd(rkey, 'notified') < 0.4 AND requested_secs > 3 * 86400
                    THEN local_ago(requested_secs - 86400
                                   - floor(rnd(rkey, 'notified_s') * (requested_secs - 2 * 86400)),
                                   'America/Los_Angeles') END,
               export_at(rkey, 'bx')
        FROM timed WHERE clean_email <> '' OR trim(phone) <> ''
        ORDER BY c, j
    """),
    ("web_events", "web_events", f"""
        WITH sessions AS (
            -- known customers' sessions
            SELECT c AS skey, customer_id, clean_email, session_secs, false AS anonymous
            FROM profile WHERE has_session
            UNION ALL
            -- visitors who never identified themselves
            SELECT c + 2000000000, '', '', session_secs, true
            FROM profile WHERE rnd(c, 'anon_visitor') < 0.05
        ),
        shaped AS (
            SELECT *,
                   rint(skey, 'views', 1, 4) AS views,
                   rnd(skey, 'carted') < 0.7 AS carted,
                   rnd(skey, 'checkout') < 0.35 AS checked_out,
                   rnd(skey, 'identified') AS identified,
                   -- carts on both sides of 100
                   (15 + floor(rnd(skey, 'cart_value') * 24000) / 100)::DECIMAL(12,2) AS cart_value
            FROM sessions
        ),
        steps AS (
            SELECT *, unnest(range(views + CASE WHEN carted THEN 1 + checked_out::INTEGER ELSE 0 END)) AS j
            FROM shaped
        )
        SELECT 'E' || lpad(skey::VARCHAR, 10, '0') || '-' || (j + 1)::VARCHAR,
               anonymous_id_of(skey),
               CASE WHEN anonymous OR identified < 0.25 THEN '' ELSE customer_id END,
               CASE WHEN anonymous OR identified BETWEEN 0.25 AND 0.6 THEN ''
                    ELSE respelled(clean_email, skey * 10 + j, 'web_email') END,
               CASE WHEN j < views THEN 'product_viewed'
                    WHEN j = views THEN 'added_to_cart' ELSE 'checkout_started' END,
               product_id_of(rint(skey * 10 + least(j, views - 1), 'web_product', 1, {PRODUCT_COUNT})),
               CASE WHEN j >= views THEN cart_value END,
               ago(session_secs - 120 * j),
               export_at(skey * 10 + j, 'wx')
        FROM steps ORDER BY skey, j
    """),
]


def parse_as_of(text: str | None) -> dt.datetime:
    if not text:
        return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)
    try:
        return dt.datetime.fromisoformat(text.strip()).replace(microsecond=0)
    except ValueError:
        raise SystemExit(
            f"error: --as-of {text!r} is not a timestamp; use e.g. '2026-11-20 12:00:00' (UTC)"
        ) from None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Write the raw source exports as Parquet, deterministically, at any scale."
    )
    parser.add_argument("--customers", type=int, required=True, help="number of store customers")
    parser.add_argument("--seed", type=int, default=42, help="same seed, same rows (default 42)")
    parser.add_argument("--out", default="data/generated", help="output folder (default data/generated)")
    parser.add_argument("--as-of", default=None,
                        help="reference 'now' in UTC, e.g. '2026-11-20 12:00:00' (default: current time)")
    parser.add_argument("--memory-limit", default="4GB", help="DuckDB memory limit (default 4GB)")
    parser.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: all cores)")
    args = parser.parse_args(argv)
    if not 1 <= args.customers <= MAX_CUSTOMERS:
        parser.error(f"--customers must be between 1 and {MAX_CUSTOMERS}, got {args.customers}")
    if not 0 <= args.seed < 2**31:
        parser.error(f"--seed must be between 0 and {2**31 - 1}, got {args.seed}")
    args.as_of = parse_as_of(args.as_of)
    return args


def generate(customers: int, seed: int, out: Path, as_of: dt.datetime,
             memory_limit: str = "4GB", threads: int | None = None) -> dict[str, tuple[int, float]]:
    """Write every table; returns {'source.table': (rows, seconds)}."""
    out.mkdir(parents=True, exist_ok=True)
    spill = out / ".spill"
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET memory_limit = {sql_string(memory_limit)}")
    con.execute(f"SET temp_directory = {sql_string(spill.as_posix())}")
    con.execute("SET preserve_insertion_order = true")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    define_macros(con, seed, as_of)

    # Remove parts of an earlier (maybe larger) run so the folder holds exactly this world.
    for source, tables in SCHEMA.items():
        for table in tables:
            folder = out / source / table
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)

    stats = {f"{s}.{t}": [0, 0.0] for s, tables in SCHEMA.items() for t in tables}
    parts = range(1, customers + 1, PART_SIZE)
    for part, lo in enumerate(parts):
        hi = min(lo + PART_SIZE, customers + 1)
        part_started = time.perf_counter()
        con.execute(CUSTOMER_PROFILE_SQL.format(lo=lo, hi=hi))
        con.execute(ORDERS_SQL.format(max_orders=MAX_ORDERS_PER_CUSTOMER))
        for source, table, query in TABLE_QUERIES:
            started = time.perf_counter()
            columns = SCHEMA[source][table]
            typed = ", ".join(
                f"CAST(col{i} AS {ctype}) AS {name}" for i, (name, ctype) in enumerate(columns)
            )
            aliases = ", ".join(f"col{i}" for i in range(len(columns)))
            target = out / source / table / f"part-{part}.parquet"
            result = con.execute(
                f"COPY (SELECT {typed} FROM ({query}) AS generated({aliases})) "
                f"TO {sql_string(target.as_posix())} (FORMAT parquet, COMPRESSION zstd)"
            ).fetchone()
            key = f"{source}.{table}"
            stats[key][0] += result[0]
            stats[key][1] += time.perf_counter() - started
        con.execute("DROP TABLE part_orders")
        con.execute("DROP TABLE profile")
        if len(parts) > 1:
            print(f"part {part + 1}/{len(parts)}: customers {lo:,}-{hi - 1:,} written in "
                  f"{time.perf_counter() - part_started:.1f} s", file=sys.stderr)
    con.close()
    shutil.rmtree(spill, ignore_errors=True)
    return {key: (rows, seconds) for key, (rows, seconds) in stats.items()}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    try:
        stats = generate(args.customers, args.seed, Path(args.out), args.as_of,
                         args.memory_limit, args.threads)
    except (duckdb.Error, OSError) as error:
        print(f"error: could not generate into {args.out}: {error}", file=sys.stderr)
        return 1
    for key, (rows, seconds) in stats.items():
        print(f"{key:<38} {rows:>12,} rows {seconds:8.1f} s", file=sys.stderr)
    print(f"{'total':<38} {sum(r for r, _ in stats.values()):>12,} rows "
          f"{time.perf_counter() - started:8.1f} s  (as-of {args.as_of:%Y-%m-%d %H:%M:%S}, "
          f"seed {args.seed}, out {args.out})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
