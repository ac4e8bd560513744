"""Retry-After as a destination sends it (RFC 9110, 10.2.3: delay-seconds or an HTTP-date),
including headers that are neither, over real HTTP through send_with_retries."""

from __future__ import annotations

import random

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from pusher.emulators.server import running
from pusher.http import RetryPolicy, WindowLimiter, parse_retry_after, send_with_retries


@pytest.mark.parametrize("value, seconds", [("3", 3.0), ("0.5", 0.5), ("-2", 0.0), (None, None), ("", None),
                                            ("soon", None), ("nan", None), ("inf", None),
                                            ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)])
def test_retry_after_reads_seconds_or_a_date_and_ignores_anything_else(value, seconds):
    assert parse_retry_after(value) == seconds


def test_a_malformed_retry_after_is_retried_with_the_policy_s_backoff():
    """A 429 whose Retry-After is neither a number nor a date is retried after the policy's own
    backoff (it used to raise ValueError out of the request), and a 200 carrying one is returned."""
    answers = iter([(429, "soon"), (200, "whenever")])

    async def endpoint(request):
        status, retry_after = next(answers)
        return JSONResponse({}, status_code=status, headers={"Retry-After": retry_after})

    app = Starlette(routes=[Route("/add", endpoint, methods=["POST"])])
    slept: list[float] = []
    policy = RetryPolicy(base_delay=0.5, sleep=slept.append, rng=random.Random(7))
    with running(app) as url, httpx.Client(base_url=url) as client:
        response = send_with_retries(client, "POST", "/add", policy=policy, limiter=WindowLimiter(10, 1.0))
    assert response.status_code == 200
    assert len(slept) == 1 and 0.0 <= slept[0] <= 0.5       # full jitter under the first ceiling
