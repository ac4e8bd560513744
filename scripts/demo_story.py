"""The demo's story: a cart abandoner places an order, and both destinations follow.

After the first sync, one person in a cart-recovery audience buys. The order is a new row in
the raw store export (demo-only: inserted into the seed table, which the next `dbt build
--exclude resource_type:seed` keeps), one hour before the demo's "now". The rebuild moves them
out of the cart lists and into the recent-purchaser suppression; the next `pusher sync` makes
both destinations follow, and `describe_move` prints exactly that, read back from the emulators.

The staging models are incremental: they keep the story's rows, while the next plain `dbt build`
reloads the seeds without them (an order line whose order is gone from the raw export fails
its relationships test). So the demo ends with RESTORE_BUILD, which reloads the seeds and
rebuilds every model from them: the warehouse is the committed demo world again.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from pusher.emulators.compare import fetch_states
from pusher.pii import mask_email

ORDER_ID = "O-DEMO-STORY-1"
ORDERED_AT = "2026-11-20 11:00:00"      # an hour before the demo world's anchor (its "now")
EXPORTED_AT = "2026-11-20 11:30:00"
RESTORE_BUILD = ["build", "--full-refresh"]    # dbt arguments that put the demo world back
DESTINATIONS = {"customerio": "Customer.io", "microsoft_ads": "Microsoft Ads"}


def pick_cart_abandoner(database: Path) -> tuple[str, str, str]:
    """(customer_id, email, email_sha256) of the first cart abandoner both destinations hold."""
    with duckdb.connect(str(database), read_only=True) as conn:
        row = conn.execute(
            "select audience.customer_id, profile.email, audience.email_sha256 from aud_cart_abandon_1_3d as audience "
            "join customer_profile as profile using (customer_id) where audience.email_sha256 is not null "
            "order by audience.customer_id limit 1").fetchone()
    if row is None:
        raise SystemExit("the demo world has no cart abandoner with an email")
    return row[0], row[1], row[2]


def place_order(database: Path, customer_id: str, email: str) -> None:
    """The abandoner buys: one paid order and its line in the raw store export."""
    with duckdb.connect(str(database)) as conn:
        conn.execute("insert into raw_store__orders (order_id, customer_id, email, ordered_at, financial_status, "
                     "total_price, currency, _exported_at) values (?, ?, ?, ?, 'paid', '80.00', 'USD', ?)",
                     [ORDER_ID, customer_id, email, ORDERED_AT, EXPORTED_AT])
        conn.execute("insert into raw_store__order_lines (order_line_id, order_id, product_id, product_category, "
                     "quantity, unit_price, _exported_at) values ('L-DEMO-STORY-1', ?, 'P001', 'accessories', "
                     "'1', '80.00', ?)", [ORDER_ID, EXPORTED_AT])


def memberships(cio_url: str, msads_url: str, customer_id: str, email_sha256: str) -> dict[str, set[str]]:
    """What each destination holds for the person now: Customer.io segments by id, Microsoft lists by hash."""
    states = fetch_states(cio_url, msads_url)
    segments = {segment["name"] for segment in states["customerio"].get("segments", {}).values()
                if customer_id in segment.get("members", [])}
    lists = {item["name"] for item in states["microsoft_ads"].get("lists", [])
             if email_sha256 in item.get("members", [])}
    return {"customerio": segments, "microsoft_ads": lists}


def describe_move(customer_id: str, email: str, before: dict[str, set[str]], after: dict[str, set[str]]) -> str:
    lines = [f"{customer_id} ({mask_email(email)}) placed an order; the destinations now say:"]
    for key, label in DESTINATIONS.items():
        left, joined = sorted(before[key] - after[key]), sorted(after[key] - before[key])
        lines.append(f"  {label:<14} left:   {', '.join(left) or '-'}")
        lines.append(f"  {'':<14} joined: {', '.join(joined) or '-'}")
    return "\n".join(lines)


def moved_as_expected(before: dict[str, set[str]], after: dict[str, set[str]]) -> bool:
    """Out of every cart list, into the recent-purchaser suppression, at both destinations."""
    return all(any("Cart_Abandon" in name for name in before[key] - after[key])
               and not any("Cart_Abandon" in name for name in after[key])
               and any("Suppress_Recent_Purchasers" in name for name in after[key] - before[key])
               for key in DESTINATIONS)
