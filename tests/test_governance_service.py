"""The governance API: 401 without a key, 403 without the role, decisions as the key's principal."""

from __future__ import annotations

import pytest

from riskops.governance.service import create_app
from riskops.stages.signoff import open_request
from tests.governance_helpers import principal
from tests.helpers import AppClient
from tests.test_signoff import KEYS, MODEL, RUN, FakePrefect, platform  # noqa: F401  (fixture)

pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning")


@pytest.fixture
def api(platform):  # noqa: F811
    fake = FakePrefect(platform)
    app = create_app(platform=platform, prefect=fake.prefect(), signing_key=KEYS[0],
                     session_secret="s" * 32, wait_seconds=2)  # fmt: skip
    open_request(platform=platform, model=MODEL, version="1", flow_run_id=RUN)
    return AppClient(app), platform


def test_every_decision_endpoint_authenticates(api):
    client, plat = api
    assert client.get("/health").status_code == 200  # health is open
    url = f"/api/v1/models/{MODEL}/versions/1/decision"
    body = {"decision": "approve", "justification": "gates passed; benchmark comparable"}
    assert client.post(url, json=body).status_code == 401
    assert client.post(url, json=body, headers={"Authorization": "Bearer rk_x"}).status_code == 401
    dev = principal(plat.engine, "dev2@bank", "model-developer")
    refused = client.post(url, json=body, headers={"Authorization": f"Bearer {dev}"})
    assert refused.status_code == 403 and "only a risk-officer" in refused.json()["error"]
    assert refused.json()["record"]["approver"] == "dev2@bank"  # the refusal is on record
    officer = principal(plat.engine, "carol@bank", "risk-officer")
    headers = {"Authorization": f"Bearer {officer}"}
    assert client.get("/api/v1/whoami", headers=headers).json()["role"] == "risk-officer"
    assert [p["version"] for p in client.get("/api/v1/signoffs", headers=headers).json()] == ["1"]
    done = client.post(url, json=body, headers=headers)
    assert done.status_code == 200, done.text
    assert done.json()["approver"] == "carol@bank" and done.json()["verified"] is True
    bad = client.post(url, json={"decision": "maybe", "justification": "x"}, headers=headers)
    assert bad.status_code == 422


def test_the_sign_off_page_refuses_a_developer_key(api):
    client, plat = api
    dev = principal(plat.engine, "dev3@bank", "model-developer")
    page = client.post("/signoff/login", data={"key": dev})
    assert page.status_code == 403 and "may not signoff.decide" in page.text
    assert "set-cookie" not in page.headers
    wrong = client.post("/signoff/login", data={"key": "rk_wrong"})
    assert wrong.status_code == 401
    assert client.get(f"/signoff/{MODEL}/1").status_code == 303


def test_the_session_cookie_is_secure_when_served_behind_https(platform):  # noqa: F811
    officer = principal(platform.engine, "dora@bank", "risk-officer")
    app = create_app(platform=platform, prefect=FakePrefect(platform).prefect(),
                     signing_key=KEYS[0], session_secret="s" * 32, secure_cookies=True)  # fmt: skip
    cookie = AppClient(app).post("/signoff/login", data={"key": officer}).headers["set-cookie"]
    assert "HttpOnly" in cookie and "Secure" in cookie and "samesite=strict" in cookie.lower()
    assert officer not in cookie  # the key never travels in the cookie


def test_a_rotated_key_ends_the_page_session(api):
    from riskops.db import session_scope
    from riskops.identity.principals import rotate_key

    client, plat = api
    officer = principal(plat.engine, "erin@bank", "risk-officer")
    login = client.post("/signoff/login", data={"key": officer})
    token = login.headers["set-cookie"].split(";")[0]  # riskops_session=...
    assert client.get(f"/signoff/{MODEL}/1", headers={"cookie": token}).status_code == 200
    with session_scope(plat.engine) as session:
        rotate_key(session=session, name="erin@bank", actor="admin")
    assert client.get(f"/signoff/{MODEL}/1", headers={"cookie": token}).status_code == 303
