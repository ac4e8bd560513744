"""Campaign Management ApplyCustomerListUserData: small Customer List changes without Bulk. No I/O.

REST: `POST <campaign>/CampaignManagement/v13/CustomerListUserData/Apply` (the bingads SDK's
openapi_client/api/campaign_management_service_api.py), body
`{"CustomerListUserData": {"AudienceId", "ActionType": Add|Remove|Replace,
"CustomerListItemSubType": "Email", "CustomerListItems": [<sha256 hex>, ...],
"AcceptCustomerMatchTerm": true|false (left out when unset)}}` (the SDK's
openapi_client/models/campaign/customer_list_user_data.py); at most 1,000 items a call, on a
list that already exists; synchronous. The answer is `{"PartialErrors": [BatchError]}`, each
with the `Index` of the item it is about, `Code`, `ErrorCode`, `Message`
(apply_customer_list_user_data_response.py, batch_error.py).
"""

from __future__ import annotations

from typing import Sequence

from pusher.destinations.base import Member

OPERATION = "CustomerListUserData/Apply"
MAX_ITEMS = 1000


def apply_body(audience_id: str, action: str, members: Sequence[Member], accept_terms: bool | None) -> dict:
    data: dict = {"AudienceId": str(audience_id), "ActionType": action, "CustomerListItemSubType": "Email",
                  "CustomerListItems": [member.email_sha256 for member in members]}
    if accept_terms is not None:
        data["AcceptCustomerMatchTerm"] = accept_terms
    return {"CustomerListUserData": data}


def item_errors(answer: dict, count: int) -> tuple[dict[int, str], list[str]]:
    """PartialErrors as item position -> "<Code> <ErrorCode>: <Message>", plus the errors that
    name no item of the call (they concern the whole call)."""
    by_index: dict[int, str] = {}
    unplaced: list[str] = []
    for error in answer.get("PartialErrors") or []:
        if not isinstance(error, dict):
            continue
        reason = f"{error.get('Code', '')} {error.get('ErrorCode') or ''}: {error.get('Message') or ''}".strip()
        index = error.get("Index")
        if isinstance(index, int) and 0 <= index < count:
            by_index[index] = f"{by_index[index]}; {reason}" if index in by_index else reason
        else:
            unplaced.append(reason)
    return by_index, unplaced
