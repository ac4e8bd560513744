"""Independent check: the official `customerio` Python SDK (PyPI `customerio`) talks to the emulator.

The SDK only speaks HTTPS (customerio/track.py builds https:// URLs), so the emulator is served over
TLS with a throwaway CA from `trustme`, which requests trusts through REQUESTS_CA_BUNDLE. Valid calls
must be accepted and land as the SDK meant them; invalid ones must be refused as the real Track API
refuses them (https://docs.customer.io/journeys/invalid-api-requests): 400 for broken limits, 401
for bad credentials. The SDK raises CustomerIOException for any non-2xx answer and treats a v2
207 as success (client_base.py send_request), which is why the pusher reads 207 bodies itself.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import trustme
from customerio import CustomerIO, CustomerIOException
from customerio.constants import ID

from pusher.emulators.customerio import create_app
from pusher.emulators.options import EmulatorOptions
from pusher.emulators.server import running

SITE_ID, API_KEY = "demo-site", "demo-key"
ULID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"


@pytest.fixture
def tls_emulator(tmp_path, monkeypatch):
    authority = trustme.CA()
    server_pem, ca_pem = tmp_path / "server.pem", tmp_path / "ca.pem"
    authority.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(server_pem))
    authority.cert_pem.write_to_path(str(ca_pem))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_pem))
    app = create_app(EmulatorOptions(), env={})
    with running(app, ssl_certfile=str(server_pem)) as url:
        yield app, int(url.rsplit(":", 1)[1])


def sdk(port: int, api_key: str = API_KEY) -> CustomerIO:
    # No pooled connection left open: the server would wait for it when the test stops it.
    return CustomerIO(SITE_ID, api_key, host="127.0.0.1", port=port, retries=0, timeout=5,
                      use_connection_pooling=False)


def people(app) -> dict:
    return app.workspace.inspect()["people"]


def test_the_sdk_valid_calls_are_accepted_and_land(tls_emulator):
    app, port = tls_emulator
    client = sdk(port)
    client.identify("c1", email="a@example.com", plan="pro", created_at=datetime(2026, 11, 20, tzinfo=timezone.utc),
                    score=float("nan"), address={"city": "Oslo"}, tags=["a", "b"])
    client.identify("c2", email="b@example.com", plan="basic", city="Bergen")
    client.track("c1", "order_placed", {"total": 12.5}, id=ULID, timestamp=1_795_168_800)
    client.track("c1", "order_placed", {"total": 12.5}, id=ULID, timestamp=1_795_168_800)   # same id: deduplicated
    client.backfill("c2", "signed_up", 1_795_000_000, source="web")
    client.batch([{"type": "person", "identifiers": {"id": "c3"}, "action": "identify",
                   "attributes": {"plan": "max"}, "timestamp": 1_795_168_800}])
    state = people(app)
    assert state["c1"]["attributes"] == {"email": "a@example.com", "plan": "pro", "created_at": 1_795_132_800,
                                         "address": {"city": "Oslo"}, "tags": ["a", "b"]}   # NaN sent as null
    assert [event["id"] for event in state["c1"]["events"]] == [ULID]
    assert state["c3"]["attributes"] == {"plan": "max"}
    client.merge_customers(ID, "c1", ID, "c2")          # c2's city and events move to c1, c2 is gone
    state = people(app)
    assert "c2" not in state and state["c1"]["attributes"]["city"] == "Bergen"
    assert state["c1"]["attributes"]["plan"] == "pro"   # set on the primary: kept
    client.delete("c3")
    assert set(people(app)) == {"c1"}
    client.close()


@pytest.mark.parametrize("call, status, message", [
    (lambda c: c.identify("i" * 151, plan="x"), "400", "151 bytes"),
    (lambda c: c.identify("c1", **{f"a{i}": i for i in range(301)}), "400",
     "cannot identify more than 300 attributes in one request"),
    (lambda c: c.identify("c1", note="x" * 1001), "400", "value for attribute 'note' cannot be longer than 1000"),
    (lambda c: c.identify("c1", prefs={"sizes": ["x" * 1000]}), "400", "value for attribute 'prefs'"),
    (lambda c: c.track("c1", "n" * 101), "400", "101 bytes"),
    (lambda c: c.track("c1", "bought", {"blob": "x" * 100_000}), "400", "event data is"),
    (lambda c: c.track("c1", "bought", id="not-a-ulid"), "400", "ULID"),
    (lambda c: c.send_request("POST", f"{c.base_url}/merge_customers",      # the SDK's own transport
                              {"primary": {"id": "c1", "email": "a@x.io"}, "secondary": {"id": "c2"}}),
     "400", "exactly one of"),
])
def test_the_sdk_invalid_calls_are_refused_as_the_api_refuses_them(tls_emulator, call, status, message):
    app, port = tls_emulator
    client = sdk(port)
    with pytest.raises(CustomerIOException) as refused:
        call(client)
    text = str(refused.value)
    del refused     # its traceback holds the SDK's response, whose open connection would stall the server's stop
    assert text.startswith(f"{status}:") and message in text
    assert people(app) == {}


def test_the_sdk_with_a_wrong_key_is_refused_401(tls_emulator):
    app, port = tls_emulator
    with pytest.raises(CustomerIOException, match="^401:"):
        sdk(port, api_key="wrong").identify("c1", plan="x")
    assert people(app) == {}


def test_the_per_person_cap_refuses_the_sdk_call_that_crosses_it(tls_emulator):
    app, port = tls_emulator
    client = sdk(port)
    client.identify("c1", **{f"a{i}": i for i in range(299)})
    client.identify("c1", a0=None, b0=1, b1=2)         # 299 - 1 + 2 = 300: fits
    with pytest.raises(CustomerIOException, match="cannot hold more than 300 attributes per person"):
        client.identify("c1", c0=1)
    assert len(people(app)["c1"]["attributes"]) == 300


def test_the_sdk_treats_a_207_as_success_so_its_errors_must_be_read(tls_emulator):
    app, port = tls_emulator
    response = sdk(port).batch([
        {"type": "person", "identifiers": {"id": "ok"}, "action": "identify", "attributes": {"a": 1}},
        {"type": "person", "identifiers": {"id": "i" * 151}, "action": "identify", "attributes": {"a": 1}},
    ])
    assert response.status_code == 207
    assert [(e["batch_index"], e["field"]) for e in response.json()["errors"]] == [(1, "identifiers")]
    assert set(people(app)) == {"ok"}
