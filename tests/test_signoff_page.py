"""The risk officers' sign-off page in a real headless browser (Debian's chromium, Playwright).

The governance app runs under uvicorn on a free loopback port, over a SQLite (or PostgreSQL)
platform with principals and a validated version whose sign-off request is waiting. A fake
Prefect resumes the paused run by doing what the sign-off flow does: ``submit``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlmodel import select

from riskops import audit
from riskops.db import session_scope
from riskops.governance.decide import Prefect
from riskops.governance.service import create_app
from riskops.lake.local import LocalLake
from riskops.platform import Platform
from riskops.records import SignOffRecord, SignOffRequest
from riskops.stages.signoff import open_request, submit
from tests.governance_helpers import ed25519_keypair, gate_report, pipeline_version, principal

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning"),
]

CHROMIUM = Path("/usr/bin/chromium")
# No sandbox: CI runs as root; the rest keeps the browser off the network and quiet.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
MODEL = "credit-scoring"
RUN = "6f1d3b7e-0000-4000-8000-0000000000aa"
GATES = [
    {"name": "discrimination.auc", "passed": True, "status": "pass", "value": 0.78,
     "threshold": 0.7, "message": "AUC is 0.78, required at least 0.7: passes."},
    {"name": "fairness.approval_rate_ratio", "passed": True, "status": "pass", "value": 0.91,
     "threshold": 0.8, "message": "approval-rate ratio is 0.91, required at least 0.8: passes.",
     "evidence": {"decision_threshold": 0.5, "groups": [
         {"group": "F", "n": 480, "approval_rate": 0.61, "true_positive_rate": 0.7,
          "included": True},
         {"group": "M", "n": 520, "approval_rate": 0.67, "true_positive_rate": 0.72,
          "included": True},
     ]}},
]  # fmt: skip


def _on_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _unavailable(reason: str) -> None:
    """Skip on a developer's machine; on CI a browser test that cannot run is a failure."""
    if _on_ci():
        pytest.fail(f"CI=true and the browser test cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


def _install_chromium() -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium"]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            _unavailable(f"`{' '.join(command)}` failed: {done.stderr.strip()[-500:]}")


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's chromium, installed with apt-get when allowed (root on CI, or asked to)."""
    if not CHROMIUM.exists():
        root = hasattr(os, "geteuid") and os.geteuid() == 0
        asked = os.environ.get("RISKOPS_INSTALL_BROWSER") == "1"
        if not ((root and _on_ci()) or asked) or shutil.which("apt-get") is None:
            _unavailable(
                f"{CHROMIUM} is missing; install Debian's chromium (`apt-get install chromium`) "
                "or set RISKOPS_INSTALL_BROWSER=1 to let the test install it as root"
            )
        _install_chromium()
        if not CHROMIUM.exists():
            _unavailable(f"apt-get installed chromium but {CHROMIUM} is still missing")
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Any]:
    """One headless chromium for the module; each test opens its own context (no cookies)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -c constraints.txt -e '.[dev]')")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


class SignOffFlow:
    """A paused sign-off run: ``resume`` records the decision as the flow does (``submit``)."""

    def __init__(self, platform: Platform, model: str, version: str) -> None:
        self.platform, self.model, self.version = platform, model, version
        self.resumed: list[dict[str, Any]] = []

    def prefect(self) -> Prefect:
        return Prefect(run_state=lambda _run: "Paused", resume=self.resume)

    def resume(self, run_id: str, run_input: dict[str, Any]) -> None:
        self.resumed.append(run_input)
        submit(
            platform=self.platform, model=self.model, version=self.version, flow_run_id=run_id,
            typed_approver=run_input["approver"], decision=run_input["decision"],
            justification=run_input["justification"], envelope=run_input["envelope"],
        )  # fmt: skip


@contextmanager
def _serve(app: Any) -> Iterator[str]:
    """Run ``app`` with uvicorn in a thread on a free loopback port; stop it afterwards."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not stop"


@pytest.fixture
def page_setup(engine, tmp_path: Path, credit_spec) -> Iterator[dict[str, Any]]:
    private, public = ed25519_keypair()
    platform = Platform(
        engine=engine, lake=LocalLake(tmp_path / "lake"),
        mlflow_tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", governance_public_key=public,
    )  # fmt: skip
    keys = {
        "ann@bank": principal(engine, "ann@bank", "model-developer"),
        "bob@bank": principal(engine, "bob@bank", "risk-officer"),
    }
    pipeline_version(engine, credit_spec, "1", landed_by="ann@bank", onboarded_by="ann@bank")
    gate_report(engine, MODEL, "1", GATES)
    opened = open_request(platform=platform, model=MODEL, version="1", flow_run_id=RUN)
    assert opened.context is not None, opened.refusal
    flow = SignOffFlow(platform, MODEL, "1")
    app = create_app(
        platform=platform, prefect=flow.prefect(), signing_key=private,
        session_secret="test-session-secret", wait_seconds=5.0,
    )  # fmt: skip
    with _serve(app) as url:
        yield {"url": url, "platform": platform, "keys": keys, "flow": flow}


def _table_after(page: Any, heading: str) -> Any:
    """The table that follows the heading starting with ``heading``."""
    return page.locator(f"h2:text-matches('^{heading}') + table")


def _cells(table: Any) -> list[list[str]]:
    return [row.locator("td").all_inner_texts() for row in table.locator("tbody tr").all()]


def test_a_risk_officer_declines_on_the_page_and_it_is_recorded(browser, page_setup, tmp_path):
    url, platform, keys, flow = (page_setup[k] for k in ("url", "platform", "keys", "flow"))
    context = browser.new_context()
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        # (a) a model developer's key is refused, and no session is issued
        page.goto(f"{url}/signoff")
        page.fill("#key", keys["ann@bank"])
        with page.expect_response(lambda r: r.url.endswith("/signoff/login")) as login:
            page.click("#login")
        assert login.value.status == 403
        page.wait_for_load_state()
        refusal = page.locator("p.error").inner_text()
        assert "ann@bank (role model-developer)" in refusal and "risk-officer" in refusal
        assert context.cookies() == []
        page.goto(f"{url}/signoff/{MODEL}/1")  # no session: back to the login form
        assert page.url == f"{url}/signoff" and page.locator("#key").is_visible()

        # (b) a risk officer not behind the version logs in, opens it and declines it
        page.fill("#key", keys["bob@bank"])
        with page.expect_navigation(url=f"{url}/signoff"):
            page.click("#login")
        [cookie] = context.cookies()
        assert cookie["httpOnly"] and keys["bob@bank"] not in cookie["value"]
        link = page.locator(f"ul#pending a[href='/signoff/{MODEL}/1']")
        assert link.inner_text() == f"{MODEL} v1"
        link.click()
        page.wait_for_url(f"{url}/signoff/{MODEL}/1")
        gates = _table_after(page, "Gates")
        assert gates.is_visible()
        assert [row[:2] for row in _cells(gates)] == [[g["name"], "pass"] for g in GATES]
        fairness = page.locator("h3:text-matches('^fairness') + table")
        assert [row[0] for row in _cells(fairness)] == ["F", "M"]
        people = _table_after(page, "People behind")
        assert people.is_visible() and _cells(people)[0][0] == "ann@bank"
        assert _table_after(page, "Lineage").is_visible()
        assert _cells(_table_after(page, "Decisions on record")) == []

        page.check("#decline")
        justification = "The F group's approval rate lags; retrain with the new bureau data."
        page.fill("#justification", justification)
        with page.expect_response(lambda r: r.url.endswith("/decision")) as decided:
            page.click("#submit")
        assert decided.value.status == 200
        page.wait_for_load_state()
        message = page.locator("p#message")
        assert message.inner_text() == f"decline recorded for {MODEL} v1 as bob@bank"
        assert "ok" in (message.get_attribute("class") or "")
        [row] = _cells(_table_after(page, "Decisions on record"))
        assert row[1:6] == ["bob@bank", "risk-officer", "decline", "True", "signoff-page"]
        assert row[6] == justification
        assert page.locator("#submit").count() == 0  # the decision is closed
        page.screenshot(path=str(tmp_path / "signoff-declined.png"), full_page=True)
    finally:
        context.close()

    # (c) what the platform recorded
    assert [r["approver"] for r in flow.resumed] == ["bob@bank"]
    with session_scope(platform.engine) as session:
        [record] = session.exec(select(SignOffRecord)).all()
        request = session.exec(select(SignOffRequest)).one()
        decided_rows = audit.rows_for_subject(session=session, subject_prefix=f"{MODEL}/1")
        page_rows = audit.rows_for_subject(session=session, subject_prefix="signoff-page")
    assert (record.approver, record.decision, record.accepted) == ("bob@bank", "decline", True)
    assert record.verified and record.channel == "signoff-page"
    assert record.approver_role == "risk-officer" and record.justification == justification
    assert request.status != "waiting"
    declines = [r for r in decided_rows if r.action == "signoff.decline"]
    assert [r.actor for r in declines] == ["bob@bank"]
    assert declines[0].payload["channel"] == "signoff-page"
    assert [(r.action, r.actor) for r in page_rows] == [("signoff-page.refused", "ann@bank")]
    assert page_rows[0].payload == {"role": "model-developer"}
