"""ApplyCustomerListUserData: the emulator's rules (raw HTTP) and the destination's choice
between it (small batches) and Bulk (large ones), per-item errors mapped back to rows."""

from __future__ import annotations

import json

import pytest
from msads_helpers import HTTP, members, sha
from test_msads_emulator import access_token, create_list, fault_codes, headers

from pusher.destinations.base import ListRef, Member
from pusher.errors import DestinationRequestError

APPLY = "/CampaignManagement/v13/CustomerListUserData/Apply"
NAME = "MSADS__Apply"


def apply(emulator, access, **data):
    body = {"CustomerListUserData": {"ActionType": "Add", "CustomerListItemSubType": "Email", **data}}
    return HTTP.post(emulator.base + APPLY, headers=headers(access), json=body)


def test_apply_adds_removes_and_replaces_at_once(emulator):
    access = access_token(emulator.base)
    list_id = create_list(emulator.base, access)
    a, b, c = (m.email_sha256 for m in members(3))
    assert apply(emulator, access, AudienceId=list_id, CustomerListItems=[a, b]).json() == {"PartialErrors": []}
    assert emulator.members_of(list_id) == {a, b}
    apply(emulator, access, AudienceId=list_id, ActionType="Remove", CustomerListItems=[a])
    assert emulator.members_of(list_id) == {b}
    apply(emulator, access, AudienceId=list_id, ActionType="Replace", CustomerListItems=[c])
    assert emulator.members_of(list_id) == {c}


def test_apply_answers_per_item_errors_with_their_index_and_applies_the_rest(emulator):
    access = access_token(emulator.base)
    list_id = create_list(emulator.base, access)
    good = sha("good@example.com")
    answer = apply(emulator, access, AudienceId=list_id,
                   CustomerListItems=["Jane@Example.com", good, "", good.upper()]).json()
    assert [(e["Index"], e["Code"]) for e in answer["PartialErrors"]] == [(0, 8004), (2, 8006), (3, 8004)]
    assert emulator.members_of(list_id) == {good}


@pytest.mark.parametrize("data, code", [
    ({"AudienceId": "999"}, 8000),
    ({"ActionType": "Upsert"}, 8001),
    ({"CustomerListItemSubType": "Phone"}, 8002),
    ({"AcceptCustomerMatchTerm": False}, 8003),
    ({"CustomerListItems": []}, 8006),
    ({"CustomerListItems": [sha(f"u{i}@x.io") for i in range(1001)]}, 0),
])
def test_apply_refuses_what_the_service_refuses(emulator, data, code):
    access = access_token(emulator.base)
    list_id = create_list(emulator.base, access)
    fields = {"AudienceId": list_id, "CustomerListItems": [sha("a@b.c")], **data}
    response = apply(emulator, access, **fields)
    assert response.status_code == 400 and fault_codes(response) == [code]
    assert emulator.members_of(list_id) == set()


def test_apply_needs_the_same_auth_as_every_call(emulator):
    access = access_token(emulator.base)
    list_id = create_list(emulator.base, access)
    body = {"CustomerListUserData": {"AudienceId": list_id, "ActionType": "Add", "CustomerListItemSubType": "Email",
                                     "CustomerListItems": [sha("a@b.c")]}}
    for override, code in (({"Authorization": "Bearer nope"}, 105), ({"CustomerAccountId": "3000"}, 106)):
        response = HTTP.post(emulator.base + APPLY, headers=headers(access, **override), json=body)
        assert fault_codes(response) == [code]
    assert emulator.members_of(list_id) == set()


def test_terms_never_accepted_in_the_ui_refuse_an_apply_without_the_flag(start_emulator, tmp_path):
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"lists": {"5": {"id": "5", "name": NAME, "scope": "Customer",
                                                 "membership_duration": -1, "members": []}},
                                 "terms_accepted": False}))
    emulator = start_emulator(state_file=state)
    access = access_token(emulator.base)
    item = [sha("a@b.c")]
    assert fault_codes(apply(emulator, access, AudienceId="5", CustomerListItems=item)) == [8003]
    assert apply(emulator, access, AudienceId="5", CustomerListItems=item, AcceptCustomerMatchTerm=True).status_code == 200
    assert emulator.members_of("5") == set(item)


# ---- the destination -------------------------------------------------------------------------

def made_list(dest) -> ListRef:
    return ListRef(NAME, dest.ensure_list(ListRef(NAME)))


def test_small_batches_go_through_apply_and_large_ones_through_bulk(emulator, make_destination):
    dest = make_destination(emulator)
    ref = made_list(dest)
    uploads = emulator.stats()["uploads"]
    assert len(dest.add_members(ref, members(12)).accepted) == 12
    assert emulator.stats()["uploads"] == uploads and emulator.stats()["applied_items"] == 12
    assert len(dest.add_members(ref, members(1001, start=100)).accepted) == 1001
    assert emulator.stats()["uploads"] == uploads + 1 and emulator.stats()["applied_items"] == 12
    assert len(dest.remove_members(ref, members(2)).accepted) == 2
    assert len(emulator.members_of(ref.external_id)) == 10 + 1001


def test_the_threshold_is_a_setting(emulator, make_destination):
    dest = make_destination(emulator, MSADS_APPLY_MAX_ITEMS="5")
    ref = made_list(dest)
    uploads = emulator.stats()["uploads"]
    dest.add_members(ref, members(5))
    dest.add_members(ref, members(6, start=10))
    assert emulator.stats()["applied_items"] == 5 and emulator.stats()["uploads"] == uploads + 1


def test_per_item_errors_become_rejections_of_the_right_rows(start_emulator, make_destination):
    bad = sha("user1@example.com")
    emulator = start_emulator(env={"MSADS_EMULATOR_ROW_FAULT_TEXTS": bad})
    dest = make_destination(emulator)
    ref = made_list(dest)
    result = dest.add_members(ref, members(3))
    assert result.accepted == ["c0", "c2"] and set(result.rejected) == {"c1"}
    assert result.rejected["c1"].startswith("0 InternalError")
    assert bad not in emulator.members_of(ref.external_id)


def test_replace_through_apply_leaves_exactly_the_batch(emulator, make_destination):
    dest = make_destination(emulator)
    ref = made_list(dest)
    dest.add_members(ref, members(4))
    dest.add_members(ref, [Member("z", sha("z@example.com"))], replace=True)
    assert emulator.members_of(ref.external_id) == {sha("z@example.com")}


def test_a_list_gone_at_the_destination_is_a_request_error_naming_8000(emulator, make_destination):
    dest = make_destination(emulator)
    with pytest.raises(DestinationRequestError, match="8000"):
        dest.add_members(ListRef(NAME, "424242"), members(2))
