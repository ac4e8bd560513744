"""Microsoft's own count of each Customer List's matched members, for `pusher status`.

The Audience objects GetAudiencesByIds answers (REST `Audiences/QueryByIds`, see
microsoft_ads) carry `SearchSize` and `AudienceNetworkSize` (the bingads SDK's
openapi_client/models/campaign/audience_base.py; longs as JSON strings, null until
computed). The Customer List record docs say to check the Audience Size fields, e.g.
Audience Search Size, about 48 hours after an upload to see how many customers matched,
and a list serves only with at least 300 matched people. Asked only by `pusher status`
(MSADS_STATUS_SIZES=false turns it off); a failure is reported on the row, never raised.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from pusher.errors import PusherError
from pusher.http import RetryPolicy

SERVING_MINIMUM = 300
BATCH = 100                     # GetAudiencesByIds answers at most 100 ids a call


def _count(value: Any) -> int | None:
    try:
        return None if value in (None, "") else int(value)
    except (TypeError, ValueError):
        return None


def sizes_from_audiences(ids: list[str], answer: dict, configured_duration: int | None = None) -> dict[str, dict[str, Any]]:
    """One GetAudiencesByIds answer (asked for `ids`, in order) -> id -> reported fields. A list
    whose MembershipDuration is not the configured one (made before a settings change) is
    flagged: the pusher refreshes members by the configured duration."""
    out: dict[str, dict[str, Any]] = {}
    audiences = answer.get("Audiences") or []
    for position, list_id in enumerate(ids):
        audience = audiences[position] if position < len(audiences) else None
        if not isinstance(audience, dict) or str(audience.get("Id")) != list_id:
            out[list_id] = {"reported_problem": f"Microsoft Advertising has no Customer List {list_id} "
                                                "(deleted there?)"}
            continue
        search, network = _count(audience.get("SearchSize")), _count(audience.get("AudienceNetworkSize"))
        fields: dict[str, Any] = {"reported_search_size": search, "reported_audience_network_size": network}
        if search is None and network is None:
            fields["reported_note"] = "no size reported yet (Microsoft computes it about 48 h after an upload)"
        elif max(search or 0, network or 0) < SERVING_MINIMUM:
            fields["reported_warning"] = (f"Microsoft matched {max(search or 0, network or 0)} members, under the "
                                          f"{SERVING_MINIMUM} a list needs to serve")
        duration = _count(audience.get("MembershipDuration"))
        fields["reported_membership_duration"] = duration
        if configured_duration is not None and duration is not None and duration != configured_duration:
            fields["reported_duration_warning"] = (
                f"the list keeps members {duration} days at Microsoft, but MSADS_MEMBERSHIP_DURATION is "
                f"{configured_duration}: members may expire unrefreshed; set MSADS_MEMBERSHIP_DURATION={duration}")
        out[list_id] = fields
    return out


def reported_sizes(list_ids: list[str], env: Mapping[str, str], project_dir: Path | None) -> dict[str, dict[str, Any]]:
    """id -> reported fields, or {"reported_problem": ...} per id when Microsoft cannot be asked."""
    if not list_ids or env.get("MSADS_STATUS_SIZES", "").strip().lower() in ("0", "false", "no"):
        return {}
    from pusher.destinations.microsoft_ads import MicrosoftAdsDestination, membership_duration_setting

    try:
        # Status must stay quick: few retries, no long throttle waits.
        destination = MicrosoftAdsDestination.from_env(env, project_dir=project_dir, max_throttle_retries=1,
                                                       retry_policy=RetryPolicy(max_attempts=2, max_delay=2.0))
    except PusherError as exc:
        return {list_id: {"reported_problem": str(exc)} for list_id in list_ids}
    out: dict[str, dict[str, Any]] = {}
    try:
        for start in range(0, len(list_ids), BATCH):
            chunk = list_ids[start:start + BATCH]
            out.update(sizes_from_audiences(chunk, destination.audiences_by_ids(chunk),
                                            membership_duration_setting(env)))
    except PusherError as exc:
        out = {list_id: {"reported_problem": str(exc)} for list_id in list_ids}
    finally:
        destination.close()
    return out
