"""Writes the committed demo world (seeds/<source>/raw_<source>__<table>.csv).

Run from the repo root: `.venv/bin/python seeds/build_demo_world.py`. Deterministic (fixed
random seed). Every timestamp is written relative to the demo anchor 2026-11-20 12:00:00 UTC,
in the zone its source declares. The named customers C9xxx are the awkward cases documented
in models/staging/*/_*__sources.yml and checked by tests/warehouse/test_demo_audiences.py.
"""

import csv
import random
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ANCHOR = datetime(2026, 11, 20, 12, 0, 0)  # UTC, naive
SEEDS = Path(__file__).resolve().parent
ZONES = {
    "store": "UTC",
    "subscriptions": "America/New_York",
    "loyalty": "Europe/London",
    "returns": "UTC",
    "reviews": "UTC",
    "back_in_stock": "America/Los_Angeles",
    "web_events": "UTC",
}
COLUMNS = {
    ("store", "customers"): ["customer_id", "email", "phone", "first_name", "last_name", "country_code",
                             "accepts_marketing", "created_at", "updated_at", "_exported_at"],
    ("store", "orders"): ["order_id", "customer_id", "email", "ordered_at", "financial_status", "total_price",
                          "currency", "_exported_at"],
    ("store", "order_lines"): ["order_line_id", "order_id", "product_id", "product_category", "quantity",
                               "unit_price", "_exported_at"],
    ("store", "refunds"): ["refund_id", "order_id", "refunded_at", "amount", "_exported_at"],
    ("subscriptions", "subscription_events"): ["event_id", "subscription_id", "customer_email",
                                               "store_customer_id", "status", "changed_at", "_exported_at"],
    ("loyalty", "loyalty_accounts"): ["account_id", "email", "points_balance", "vip_tier", "updated_at",
                                      "_exported_at"],
    ("returns", "returns"): ["return_id", "order_id", "customer_email", "status", "updated_at", "_exported_at"],
    ("reviews", "reviews"): ["review_id", "customer_email", "product_id", "rating", "submitted_at", "_exported_at"],
    ("back_in_stock", "back_in_stock_requests"): ["request_id", "email", "phone", "product_id", "requested_at",
                                                  "notified_at", "_exported_at"],
    ("web_events", "web_events"): ["event_id", "anonymous_id", "customer_id", "email", "event_name",
                                   "product_id", "cart_value", "occurred_at", "_exported_at"],
}
rows = {key: [] for key in COLUMNS}
rng = random.Random(20261120)


def ago(days=0.0, hours=0.0):
    return ANCHOR - timedelta(days=days, hours=hours)


def fmt(ts):
    return ts.strftime("%Y-%m-%d %H:%M:%S") if ts else ""


def local(source, ts_utc):
    """A UTC instant written as the naive local time of the source's zone."""
    if ts_utc is None:
        return ""
    zone = ZoneInfo(ZONES[source])
    return fmt(ts_utc.replace(tzinfo=ZoneInfo("UTC")).astimezone(zone).replace(tzinfo=None))


def add(source, table, **values):
    rows[(source, table)].append(values)


counters = {"order": 0, "line": 0, "web": 0, "sub": 0, "loyalty": 0, "return": 0, "review": 0, "bis": 0}


def next_id(kind, prefix):
    counters[kind] += 1
    return f"{prefix}{counters[kind]:05d}"


CATEGORIES = ["skincare", "haircare", "fragrance", "bodycare", "accessories"]


def customer(cid, email, phone, first, last, country="US", accepts=True, created_days=400,
             updated=None, exported=None):
    updated = updated or ago(created_days - 1)
    add("store", "customers", customer_id=cid, email=email, phone=phone, first_name=first, last_name=last,
        country_code=country, accepts_marketing="true" if accepts else "false", created_at=fmt(ago(created_days)),
        updated_at=fmt(updated), _exported_at=fmt(exported or ago(hours=6)))


def order(cid, email, ordered_at, total, status="paid", currency="USD", category=None, exported=None):
    oid = next_id("order", "O")
    add("store", "orders", order_id=oid, customer_id=cid, email=email, ordered_at=fmt(ordered_at),
        financial_status=status, total_price=f"{total:.2f}", currency=currency,
        _exported_at=fmt(exported or ordered_at + timedelta(hours=1)))
    lines = rng.randint(1, 2)
    remaining = total
    for n in range(lines):
        price = remaining if n == lines - 1 else round(total / 2, 2)
        remaining = round(remaining - price, 2)
        add("store", "order_lines", order_line_id=next_id("line", "L"), order_id=oid,
            product_id=f"P{rng.randint(1, 40):03d}", product_category=category or rng.choice(CATEGORIES),
            quantity="1", unit_price=f"{price:.2f}", _exported_at=fmt(ordered_at + timedelta(hours=1)))
    return oid


def web(cid, email, event_name, occurred_at, cart_value=None, product="P001"):
    add("web_events", "web_events", event_id=next_id("web", "W"), anonymous_id=f"anon-{cid or email}",
        customer_id=cid or "", email=email or "", event_name=event_name, product_id=product,
        cart_value="" if cart_value is None else f"{cart_value:.2f}", occurred_at=local("web_events", occurred_at),
        _exported_at=fmt(occurred_at + timedelta(minutes=30)))


def subscription(sub_id, email, cid, status, changed_at, exported=None, event_id=None):
    add("subscriptions", "subscription_events", event_id=event_id or next_id("sub", "SE"), subscription_id=sub_id,
        customer_email=email, store_customer_id=cid, status=status, changed_at=local("subscriptions", changed_at),
        _exported_at=fmt(exported or changed_at + timedelta(hours=2)))


def loyalty(account_id, email, points, tier, updated_at, exported):
    add("loyalty", "loyalty_accounts", account_id=account_id, email=email,
        points_balance="" if points is None else str(points), vip_tier=tier,
        updated_at=local("loyalty", updated_at), _exported_at=fmt(exported))


def a_return(return_id, order_id, email, status, updated_at, exported=None):
    add("returns", "returns", return_id=return_id, order_id=order_id, customer_email=email, status=status,
        updated_at=fmt(updated_at), _exported_at=fmt(exported or updated_at + timedelta(hours=3)))


# ---------------------------------------------------------------- named awkward cases
# C9001 email with capitals and spaces; abandoned a cart 5 h ago -> aud_cart_abandon_0_1d
customer("C9001", "  Alice.Capital@Example.COM ", "+1 (415) 555-0101", "Alice", "Capital")
order("C9001", "alice.capital@example.com", ago(200), 60.0)
web("C9001", "", "added_to_cart", ago(hours=5), 45.0)

# Phones in several national formats (checked in stg_store__customers)
customer("C9002", "gb.phone@example.com", "07700 900123", "Gwen", "Bright", country="GB")
customer("C9003", "us.phone@example.com", "(415) 555-0134", "Uma", "Stone", country="US")
customer("C9004", "de.phone@example.com", "0049 30 1234567", "Dirk", "Weber", country="DE")
customer("C9005", "ca.phone@example.com", "1-604-555-0199", "Cara", "Lee", country="CA")
customer("C9006", "nocountry.phone@example.com", "212.555.0147", "Noel", "Park", country="")

# C9010 changed email; loyalty still knows the old one -> matched, gold VIP
customer("C9010", "bob.old@example.com", "", "Bob", "Mover", created_days=500, updated=ago(400), exported=ago(400))
customer("C9010", "bob.new@example.com", "", "Bob", "Mover", created_days=500, updated=ago(2), exported=ago(hours=6))
for d in (300, 200, 100, 30):
    order("C9010", "bob.new@example.com", ago(d), 280.0)
loyalty("LA-9010", "bob.old@example.com", 8200, "gold", ago(20), ago(hours=5))

# C9020 and C9021: one email on two store customers -> one person C9020, conflict recorded
customer("C9020", "shared.household@example.com", "", "Sam", "Shared", created_days=600)
customer("C9021", "Shared.Household@example.com ", "", "Sasha", "Shared", created_days=300)
order("C9021", "shared.household@example.com", ago(30), 70.0)

# C9030 late export carrying an older subscription status (active exported after cancelled)
customer("C9030", "carol.late@example.com", "", "Carol", "Late")
subscription("S-9030", "carol.late@example.com", "", "active", ago(50), event_id="SE-9030-1")
subscription("S-9030", "Carol.Late@example.com", "", "cancelled", ago(5), event_id="SE-9030-2")
subscription("S-9030", "carol.late@example.com", "", "active", ago(20), exported=ago(1), event_id="SE-9030-3")

# C9031 late loyalty export of an older snapshot (silver) after gold was loaded
customer("C9031", "dan.tier@example.com", "", "Dan", "Tier")
loyalty("LA-9031", "dan.tier@example.com", 3000, "gold", ago(5), ago(hours=30))
loyalty("LA-9031", "dan.tier@example.com", 1200, "silver", ago(60), ago(hours=4))

# C9040 newer export with blanks: blank tier and blank phone must not wipe known values
customer("C9040", "erin.blank@example.com", "+1 212 555 0100", "Erin", "Blank", updated=ago(30), exported=ago(30))
customer("C9040", "erin.blank@example.com", "  ", "Erin", "Blank", updated=ago(1), exported=ago(hours=6))
loyalty("LA-9040", "erin.blank@example.com", 5000, "platinum", ago(10), ago(10))
loyalty("LA-9040", "erin.blank@example.com", 5200, " ", ago(1), ago(hours=5))

# C9050 timestamps in local time: New York winter (UTC-5) and summer (UTC-4)
customer("C9050", "frank.zone@example.com", "", "Frank", "Zone")
add("subscriptions", "subscription_events", event_id="SE-TZ-WINTER", subscription_id="S-9050",
    customer_email="frank.zone@example.com", store_customer_id="C9050", status="active",
    changed_at="2026-11-10 08:00:00", _exported_at="2026-11-10 14:00:00")
add("subscriptions", "subscription_events", event_id="SE-TZ-SUMMER", subscription_id="S-9050",
    customer_email="frank.zone@example.com", store_customer_id="C9050", status="paused",
    changed_at="2026-07-01 08:00:00", _exported_at="2026-07-01 13:00:00")

# C9060 refunded order: net LTV falls, refund share puts her in the no-discount cohort
customer("C9060", "grace.refund@example.com", "", "Grace", "Refund")
refunded = order("C9060", "grace.refund@example.com", ago(70), 200.0, status="paid")
add("store", "orders", order_id=refunded, customer_id="C9060", email="grace.refund@example.com",
    ordered_at=fmt(ago(70)), financial_status="refunded", total_price="200.00", currency="USD",
    _exported_at=fmt(ago(60)))
add("store", "refunds", refund_id="R-9060", order_id=refunded, refunded_at=fmt(ago(60)), amount="200.00",
    _exported_at=fmt(ago(60, hours=-1)))
order("C9060", "grace.refund@example.com", ago(75), 40.0)

# C9070 reactivated subscriber: active -> cancelled -> active; lapsed orders but not win-back
customer("C9070", "hank.back@example.com", "", "Hank", "Back")
subscription("S-9070", "hank.back@example.com", "C9070", "active", ago(200))
subscription("S-9070", "hank.back@example.com", "C9070", "cancelled", ago(100))
subscription("S-9070", "hank.back@example.com", "C9070", "active", ago(5))
order("C9070", "hank.back@example.com", ago(95), 80.0)

# C9080 loyalty stopped syncing 10 days ago: data stale, held out of sensitive audiences
customer("C9080", "ivy.stale@example.com", "", "Ivy", "Stale")
for d in (200, 150, 90):
    order("C9080", "ivy.stale@example.com", ago(d), 400.0)
loyalty("LA-9080", "ivy.stale@example.com", 9000, "gold", ago(12), ago(10))
web("C9080", "", "added_to_cart", ago(hours=3), 120.0)

# C9090 added to cart, then bought: suppressed from cart recovery, in recent purchasers
customer("C9090", "jack.bought@example.com", "", "Jack", "Bought")
web("C9090", "", "checkout_started", ago(hours=20), 90.0)
order("C9090", "jack.bought@example.com", ago(hours=10), 90.0)

# C9100 open return while lapsed: suppressed; C9101 return refunded, late older export
customer("C9100", "kim.return@example.com", "", "Kim", "Return")
kim_order = order("C9100", "kim.return@example.com", ago(100), 90.0)
a_return("RT-9100", kim_order, "Kim.Return@example.com", "approved", ago(2))
customer("C9101", "leo.final@example.com", "", "Leo", "Final")
leo_order = order("C9101", "leo.final@example.com", ago(30), 60.0)
a_return("RT-9101", leo_order, "leo.final@example.com", "refunded", ago(10))
a_return("RT-9101", leo_order, "leo.final@example.com", "received", ago(15), exported=ago(1))

# C9110 lapsed with a high average order value -> aud_lapsed_high_aov_60d_plus only
customer("C9110", "mia.big@example.com", "", "Mia", "Big")
order("C9110", "mia.big@example.com", ago(100), 450.0)
order("C9110", "mia.big@example.com", ago(160), 350.0)

# C9130 cart event with blank customer id, matched through a messy email
customer("C9130", "nora.anon@example.com", "", "Nora", "Anon")
web("", " Nora.Anon@Example.com", "added_to_cart", ago(days=2), 150.0)

# Loyalty account and back-in-stock request whose emails match no store customer (orphans)
loyalty("LA-ORPHAN", "nobody.here@example.com", 10, "bronze", ago(3), ago(hours=5))
add("back_in_stock", "back_in_stock_requests", request_id="BIS-ORPHAN", email="ghost@example.com",
    phone="", product_id="P007", requested_at=local("back_in_stock", ago(4)), notified_at="",
    _exported_at=fmt(ago(3)))

# ---------------------------------------------------------------- the generated crowd
FIRST = ["Ada", "Ben", "Chloe", "Dev", "Ella", "Finn", "Gia", "Hugo", "Iris", "Jon", "Kai", "Lena",
         "Max", "Nia", "Omar", "Pia", "Quinn", "Rosa", "Theo", "Vera"]
LAST = ["Smith", "Jones", "Brown", "Taylor", "Wilson", "Evans", "Walker", "Wright", "Green", "Hall"]
PHONE_FORMATS = {
    "US": lambda n: f"({200 + n % 700}) 555-{n:04d}",
    "GB": lambda n: f"07700 9{n:05d}",
    "DE": lambda n: f"+49 151 {n:07d}",
    "CA": lambda n: f"1-604-555-{n:04d}",
}

for i in range(1, 301):
    cid = f"C{i:04d}"
    first, last = FIRST[i % len(FIRST)], LAST[i % len(LAST)]
    email = f"{first}.{last}{i}@example.com"
    email = email.upper() if i % 17 == 0 else email.lower()
    country = ["US", "US", "GB", "DE", "CA"][i % 5]
    phone = PHONE_FORMATS[country](i) if i % 4 else ""
    customer(cid, email, phone, first, last, country=country, accepts=(i % 13 != 0),
             created_days=rng.randint(150, 700))
    clean = email.lower()
    segment = i % 12
    aov = rng.choice([35.0, 55.0, 80.0, 120.0, 180.0, 260.0])
    if segment in (0, 1):  # cart abandoners, 0-1 d and 1-3 d
        if i % 3:
            order(cid, clean, ago(rng.randint(60, 300)), aov)
        age_hours = rng.uniform(1, 23) if segment == 0 else rng.uniform(25, 71)
        web(cid, clean if i % 5 == 0 else "", "product_viewed", ago(hours=age_hours + 0.5))
        web(cid, "", rng.choice(["added_to_cart", "checkout_started"]), ago(hours=age_hours),
            rng.choice([25.0, 60.0, 95.0, 140.0, 220.0]))
    elif segment == 2:  # purchased once, 21-45 d ago
        order(cid, clean, ago(rng.uniform(21.5, 44.5)), aov)
    elif segment == 3:  # cross-sell window, last order 7-21 d ago
        order(cid, clean, ago(rng.randint(60, 200)), aov)
        order(cid, clean, ago(rng.uniform(7.5, 20.5)), aov)
    elif segment in (4, 5, 6):  # lapsed 60-90, 90-120, 120+
        low, high = {4: (60.5, 89.5), 5: (90.5, 119.5), 6: (121, 300)}[segment]
        last_order = ago(rng.uniform(low, high))
        for k in range(rng.randint(0, 2)):
            order(cid, clean, last_order - timedelta(days=30 * (k + 1)), aov)
        order(cid, clean, last_order, aov)
    elif segment == 7:  # recent purchaser
        order(cid, clean, ago(rng.uniform(0.2, 6.5)), aov)
    elif segment == 8:  # subscriber with regular orders
        subscription(f"S-{cid}", clean, cid if i % 2 else "", "active", ago(rng.randint(100, 300)))
        if i % 3 == 0:
            subscription(f"S-{cid}", clean, cid, "paused", ago(rng.randint(5, 40)))
        order(cid, clean, ago(rng.uniform(10, 40)), aov)
    elif segment == 9:  # big spenders
        for k in range(4):
            order(cid, clean, ago(rng.uniform(2 + 40 * k, 38 + 40 * k)), 300.0)
    elif segment == 10:  # browsers only
        web(cid, "", "product_viewed", ago(days=rng.uniform(0, 10)))
    else:  # last order 46-59 d ago: between windows
        order(cid, clean, ago(rng.uniform(46, 59)), aov)

    if i % 2 == 0:  # loyalty members: every account is in the latest full export
        tier = ["", "bronze", "silver", "gold", "platinum"][i % 5] if segment != 9 else "gold"
        loyalty(f"LA-{cid}", email, rng.randint(0, 6000), tier, ago(rng.uniform(1, 60)), ago(hours=5))
    if i % 25 == 0:
        subscription(f"S2-{cid}", clean, "", "cancelled", ago(rng.randint(20, 90)))
    if i % 9 == 0:
        add("reviews", "reviews", review_id=next_id("review", "RV"), customer_email=email,
            product_id=f"P{i % 40:03d}", rating=str(1 + i % 5), submitted_at=fmt(ago(rng.uniform(1, 50))),
            _exported_at=fmt(ago(hours=7)))
    if i % 11 == 0:
        add("back_in_stock", "back_in_stock_requests", request_id=next_id("bis", "BIS"), email=email,
            phone=phone, product_id=f"P{i % 40:03d}", requested_at=local("back_in_stock", ago(rng.uniform(1, 20))),
            notified_at=local("back_in_stock", ago(0.5)) if i % 2 else "", _exported_at=fmt(ago(hours=8)))

# a few returns in the crowd: some still open, some closed
for n, (cid_num, status) in enumerate([(3, "requested"), (15, "received"), (27, "rejected"), (39, "refunded")]):
    cid = f"C{cid_num:04d}"
    oid = next((r["order_id"] for r in rows[("store", "orders")] if r["customer_id"] == cid), None)
    if oid:
        a_return(f"RT-{n:03d}", oid, "", status, ago(rng.uniform(1, 6)))

# keep every source's latest export recent, as a healthy daily sync would
subscription("S-HEARTBEAT", "carol.late@example.com", "C9030", "cancelled", ago(6), exported=ago(hours=3),
             event_id="SE-9030-4")

# ---------------------------------------------------------------- invalid and messy inputs
# Added last so the crowd above keeps its random draws. Each is checked by
# tests/warehouse/test_inputs.py; refused values are listed in rejected_inputs.
# C9201: zero-width space, tab, NBSP and CR/LF around the email; '+44 (0)20' trunk prefix and an
# extension -> VIP with the clean email's hash and '+442079460201'
customer("C9201", "\u200b\tZoe.Zero@Example.com\u00a0\r\n", "+44 (0)20 7946 0201 ext. 23", "Zoe", "Zero",
         country="GB")
# C9202: fullwidth at sign; extension written 'x23' -> VIP as finn@example.com, '+14155550202'
customer("C9202", "finn\uff20example.com", "(415) 555-0202 x23", "Finn", "Full")
# C9203..C9205: invalid emails nulled (VIP by phone only); C9203's extension written '#23'
customer("C9203", "not-an-email", "+1 212 555 0203 #23", "Nat", "Noemail")
customer("C9204", "a@@b..com", "", "Abe", "Doubleat")
customer("C9205", "nodot@localhost", "", "Nod", "Dotless")
for cid in ("C9201", "C9202", "C9203", "C9204", "C9205"):
    for k in range(4):
        order(cid, "", ago(10 + 30 * k), 300.0)
# C9206: the only order has a total of -500.00, 70 days ago: quarantined, so no negative
# lifetime value and no win-back audience
customer("C9206", "neg.amount@example.com", "", "Ned", "Negative")
add("store", "orders", order_id="O-NEG-9206", customer_id="C9206", email="neg.amount@example.com",
    ordered_at=fmt(ago(70)), financial_status="paid", total_price="-500.00", currency="USD",
    _exported_at=fmt(ago(70, hours=-1)))

# SE-TZ-OFFSET: times with an explicit offset keep it (03:00 and 14:00 UTC), whatever the
# source's declared zone
add("subscriptions", "subscription_events", event_id="SE-TZ-OFFSET", subscription_id="S-9050",
    customer_email="frank.zone@example.com", store_customer_id="C9050", status="active",
    changed_at="2026-11-10T08:00:00+05:00", _exported_at="2026-11-10T09:00:00-05:00")

for (source, table), columns in COLUMNS.items():
    path = SEEDS / source / f"raw_{source}__{table}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows[(source, table)])
    print(f"{path.relative_to(SEEDS.parent)}: {len(rows[(source, table)])} rows")
