"""The demo's story against both emulators: a cart abandoner orders, dbt rebuilds, and one
sync moves them from the cart lists to the recent-purchaser suppression at both destinations."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, run_dbt
from tests.e2e.test_end_to_end import stack_factory  # noqa: F401  (the shared fixture)

sys.path.insert(0, str(REPO / "scripts"))
import demo_story  # noqa: E402

sys.path.pop(0)


def test_a_cart_abandoner_orders_and_both_destinations_follow(stack_factory):  # noqa: F811
    stack = stack_factory()
    assert stack.pusher("sync")["exit_code"] == 0
    database = Path(stack.env["PUSHER_DUCKDB_PATH"])
    customer_id, email, email_sha256 = demo_story.pick_cart_abandoner(database)
    before = demo_story.memberships(stack.cio_url, stack.msads_url, customer_id, email_sha256)
    assert "CIO__Cart_Abandon_1-3d__NoPurchase" in before["customerio"]
    assert any("Cart_Abandon" in name for name in before["microsoft_ads"])

    demo_story.place_order(database, customer_id, email)
    rebuild = run_dbt(stack.root, "build", "--exclude", "resource_type:seed", database=database, target="target")
    assert not rebuild.not_passing(), rebuild.output()
    assert stack.pusher("sync")["exit_code"] == 0
    after = demo_story.memberships(stack.cio_url, stack.msads_url, customer_id, email_sha256)

    assert demo_story.moved_as_expected(before, after)
    assert "CIO__Cart_Abandon_1-3d__NoPurchase" in before["customerio"] - after["customerio"]   # (and win-back, if any)
    assert "MSADS__Cart_Abandon_1-3d__NoPurchase" in before["microsoft_ads"] - after["microsoft_ads"]
    assert after["customerio"] - before["customerio"] == {"CIO__Suppress_Recent_Purchasers_0-7d"}
    assert after["microsoft_ads"] - before["microsoft_ads"] == {"MSADS__Suppress_Recent_Purchasers_0-7d"}
    text = demo_story.describe_move(customer_id, email, before, after)
    assert customer_id in text and email not in text and "***@" in text
    assert "left:   CIO__Cart_Abandon_1-3d__NoPurchase" in text


@pytest.mark.slow   # three more dbt builds of the demo (about a minute): make test stays under its budget
def test_a_plain_build_after_the_story_passes_once_the_demo_puts_its_world_back(stack_factory):  # noqa: F811
    """The staging models are incremental and keep the story's order, which a plain `dbt build`
    drops by reloading the seeds: the demo's last step rebuilds from the committed seeds."""
    stack = stack_factory()
    database = Path(stack.env["PUSHER_DUCKDB_PATH"])
    customer_id, email, _ = demo_story.pick_cart_abandoner(database)
    demo_story.place_order(database, customer_id, email)
    assert not run_dbt(stack.root, "build", "--exclude", "resource_type:seed", database=database).not_passing()

    restored = run_dbt(stack.root, *demo_story.RESTORE_BUILD, database=database)
    assert not restored.not_passing(), restored.output()
    plain = run_dbt(stack.root, "build", database=database)
    assert not plain.not_passing(), plain.output()
