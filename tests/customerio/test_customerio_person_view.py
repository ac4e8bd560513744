"""Reading one person back through the App API (used by `pusher sync --only`): the person's
segments and attributes; unknown people, bad id types and missing App API keys are refused."""

from __future__ import annotations

from pusher.destinations.base import ListRef, Member, PersonUpdate


def test_person_view_reads_segments_and_attributes(emulator, make_destination):
    destination = make_destination(emulator)
    destination.upsert_people([PersonUpdate("c1", {"email": "a@x.io", "plan": "pro"}, is_new=True),
                               PersonUpdate("c2", {"email": "b@x.io"}, is_new=True)])
    cart = destination.ensure_list(ListRef("CIO__Cart"))
    vip = destination.ensure_list(ListRef("CIO__Vip"))
    destination.add_members(ListRef("CIO__Cart", cart), [Member("c1"), Member("c2")])
    destination.add_members(ListRef("CIO__Vip", vip), [Member("c1")])
    destination.remove_members(ListRef("CIO__Cart", cart), [Member("c1")])

    assert destination.person_view("c1") == {"segments": ["CIO__Vip"],
                                             "attributes": {"email": "a@x.io", "plan": "pro"}}
    assert destination.person_view("c2")["segments"] == ["CIO__Cart"]
    assert destination.person_view("nobody") is None
    assert emulator.count("GET /v1/customers/{customer_id}/segments", "200") == 2


def test_person_endpoints_need_the_app_key_and_a_known_id_type(emulator):
    assert emulator.anonymous.get("/v1/customers/c1/attributes").status_code == 401
    assert emulator.app.get("/v1/customers/c1/segments", params={"id_type": "phone"}).status_code == 400
    assert emulator.app.get("/v1/customers/c1/segments").status_code == 404
