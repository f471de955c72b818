"""The sign-off stage and the governance API's decisions: only signed, authenticated decisions."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path

import pytest
from sqlmodel import select

from riskops import audit
from riskops.db import session_scope
from riskops.governance.decide import DecisionError, Prefect, decide
from riskops.governance.envelope import sign_decision
from riskops.identity.principals import get_principal
from riskops.lake.local import LocalLake
from riskops.outbox import OutboxEvent
from riskops.platform import Platform
from riskops.records import SignOffRecord, SignOffRequest
from riskops.stages.signoff import open_request, submit
from tests.governance_helpers import pipeline_version, principal

pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning")
MODEL = "credit-scoring"
RUN = "6f1d3b7e-0000-4000-8000-000000000001"


def _keypair() -> tuple[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()  # fmt: skip
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


KEYS = _keypair()


@pytest.fixture
def platform(engine, tmp_path: Path, credit_spec):
    platform = Platform(
        engine=engine, lake=LocalLake(tmp_path / "lake"),
        mlflow_tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", governance_public_key=KEYS[1],
    )  # fmt: skip
    principal(engine, "ann@bank", "model-developer")
    principal(engine, "ro.ann@bank", "risk-officer")
    principal(engine, "bob@bank", "risk-officer")
    pipeline_version(engine, credit_spec, "1", landed_by="ann@bank", onboarded_by="ann@bank")
    pipeline_version(engine, credit_spec, "2", landed_by="ann@bank", onboarded_by="ann@bank",
                     passed=False)  # fmt: skip
    return platform


def _envelope(approver: str, *, run: str = RUN, version: str = "1", key: str = KEYS[0],
              nonce: str = "n1", decision: str = "approve") -> str:  # fmt: skip
    return sign_decision(key, {
        "flow_run_id": run, "model": MODEL, "version": version, "approver": approver,
        "role": "risk-officer", "decision": decision, "justification": "gates passed, fine",
        "channel": "governance-api", "nonce": nonce,
        "issued_at": dt.datetime.now(dt.UTC).isoformat(),
    })  # fmt: skip


def _submit(platform, envelope: str = "", typed: str = "bob@bank", version: str = "1"):
    return submit(platform=platform, model=MODEL, version=version, flow_run_id=RUN,
                  typed_approver=typed, decision="approve", justification="I say so, really",
                  envelope=envelope)  # fmt: skip


def _events(platform) -> list[str]:
    with session_scope(platform.engine) as session:
        return [row.name for row in session.exec(select(OutboxEvent))]


def test_a_rejected_version_gets_no_sign_off_request(platform):
    """Finding 2: running the risk-sign-off deployment by hand for a rejected version."""
    opened = open_request(platform=platform, model=MODEL, version="2", flow_run_id=RUN)
    assert opened.context is None and "failed validation" in opened.refusal
    with session_scope(platform.engine) as session:
        assert session.exec(select(SignOffRequest)).all() == []
        rows = audit.rows_for_subject(session=session, subject_prefix=f"{MODEL}/2")
    assert [r.action for r in rows] == ["signoff.request-refused"]


def test_a_typed_name_in_the_prefect_form_is_refused_and_recorded(platform):
    """Finding 1 / item 3: Resume in the Prefect UI with a typed name decides nothing."""
    open_request(platform=platform, model=MODEL, version="1", flow_run_id=RUN)
    done = _submit(platform, envelope="", typed="bob@bank")
    assert not done.verdict.accepted and "no signed decision" in done.verdict.refusal
    assert done.record.verified is False and done.record.channel == "prefect-ui"
    assert done.event is None and "riskops.model.approved" not in _events(platform)
    forged = _submit(platform, envelope=_envelope("bob@bank", key=_keypair()[0]))
    assert not forged.verdict.accepted and "does not verify" in forged.verdict.refusal
    other_run = _submit(platform, envelope=_envelope("bob@bank", run="another-run"))
    assert "flow_run_id" in other_run.verdict.refusal
    with session_scope(platform.engine) as session:
        rows = audit.rows_for_subject(session=session, subject_prefix=f"{MODEL}/1")
        request = session.exec(select(SignOffRequest)).one()
    assert [r.action for r in rows][-3:] == ["signoff.refused"] * 3
    assert rows[-3].actor == "unverified:bob@bank" and request.status == "waiting"


def test_a_signed_decision_by_an_uninvolved_risk_officer_stands_with_its_event(platform):
    """Items 3, 5, 7: verified, judged and recorded with its outbox event in one transaction."""
    open_request(platform=platform, model=MODEL, version="1", flow_run_id=RUN)
    done = _submit(platform, envelope=_envelope("bob@bank"), typed="anything")
    assert done.verdict.accepted and done.record.approver == "bob@bank"
    assert done.record.verified and done.record.approver_role == "risk-officer"
    assert _events(platform) == ["riskops.model.approved"]
    replay = _submit(platform, envelope=_envelope("bob@bank"))
    assert not replay.verdict.accepted and "used before" in replay.verdict.refusal
    with session_scope(platform.engine) as session:
        assert session.exec(select(SignOffRequest)).one().status == "approved"


def test_four_eyes_holds_for_a_risk_officer_behind_the_version(platform, engine, credit_spec):
    """Finding 1: the person who landed the data cannot approve, even holding the role."""
    pipeline_version(engine, credit_spec, "3", landed_by="ro.ann@bank", onboarded_by="ann@bank")
    done = submit(platform=platform, model=MODEL, version="3", flow_run_id=RUN,
                  typed_approver="", decision="approve", justification="x" * 20,
                  envelope=_envelope("ro.ann@bank", version="3"))  # fmt: skip
    assert not done.verdict.accepted and "four-eyes" in done.verdict.refusal
    assert "landed" in done.verdict.refusal


class FakePrefect:
    """Run states and resumes, with the resume doing what the sign-off flow does."""

    def __init__(self, platform: Platform, state: str = "Paused") -> None:
        self.platform, self.state, self.resumed = platform, state, []

    def prefect(self) -> Prefect:
        return Prefect(run_state=lambda _run: self.state, resume=self.resume)

    def resume(self, run_id: str, run_input: dict) -> None:
        self.resumed.append(run_input)
        submit(
            platform=self.platform, model=MODEL, version="1", flow_run_id=run_id,
            typed_approver=run_input["approver"], decision=run_input["decision"],
            justification=run_input["justification"], envelope=run_input["envelope"],
        )  # fmt: skip


def _decide(platform, fake: FakePrefect, who: str, wait: float = 0.0, **kwargs):
    with session_scope(platform.engine) as session:
        person = get_principal(session=session, name=who)
    return decide(platform=platform, prefect=fake.prefect(), signing_key=KEYS[0], principal=person,
                  model=MODEL, version=kwargs.pop("version", "1"), decision="approve",
                  justification="gates passed and benchmark comparable", wait_seconds=wait,
                  record_timeout=10, **kwargs)  # fmt: skip


def test_a_developer_cannot_decide_and_the_refusal_is_recorded(platform):
    fake = FakePrefect(platform)
    with pytest.raises(DecisionError) as refused:
        _decide(platform, fake, "ann@bank")
    assert refused.value.status == 403 and "only a risk-officer" in refused.value.message
    assert refused.value.record is not None and fake.resumed == []


def test_approving_as_soon_as_a_version_is_validated_waits_for_the_request(platform):
    """Finding 13: no false 'must pass validation first' while the run has not paused yet."""
    fake = FakePrefect(platform, state="Running")

    def open_later() -> None:
        time.sleep(1.0)
        open_request(platform=platform, model=MODEL, version="1", flow_run_id=RUN)
        time.sleep(1.0)
        fake.state = "Paused"

    threading.Thread(target=open_later).start()
    record = _decide(platform, fake, "bob@bank", wait=30)
    assert record.accepted and record.approver == "bob@bank" and record.verified


def test_a_decision_that_cannot_be_taken_yet_states_the_version_and_its_run(platform):
    """Finding 13: every error states the actual state of the version and of its run."""
    fake = FakePrefect(platform, state="Running")
    open_request(platform=platform, model=MODEL, version="1", flow_run_id=RUN)
    with pytest.raises(DecisionError) as waiting:
        _decide(platform, fake, "bob@bank", wait=1.0)
    message = waiting.value.message
    assert waiting.value.status == 409 and "passed validation" in message
    assert RUN in message and "state Running" in message
    with pytest.raises(DecisionError) as rejected:
        _decide(platform, fake, "bob@bank", wait=1.0, version="2")
    assert (
        "failed validation" in rejected.value.message
        and "cannot be approved" in rejected.value.message
    )
    with session_scope(platform.engine) as session:
        assert session.exec(select(SignOffRecord)).all() == []  # nothing was decided


def test_a_request_whose_run_ended_is_taken_over_and_a_live_one_is_not(platform):
    """A cancelled or crashed sign-off run must not leave the version undecidable forever."""
    open_request(platform=platform, model=MODEL, version="1", flow_run_id=RUN)
    live = open_request(platform=platform, model=MODEL, version="1", flow_run_id="run-2",
                        run_state=lambda _run: "Paused")  # fmt: skip
    assert live.duplicate_of == RUN
    taken = open_request(platform=platform, model=MODEL, version="1", flow_run_id="run-3",
                         run_state=lambda _run: "Cancelled")  # fmt: skip
    assert taken.context is not None
    with session_scope(platform.engine) as session:
        request = session.exec(select(SignOffRequest)).one()
        rows = audit.rows_for_subject(session=session, subject_prefix=f"{MODEL}/1")
    assert request.flow_run_id == "run-3" and request.status == "waiting"
    assert rows[-1].action == "signoff.request-taken-over"
    assert rows[-1].payload["from_run"] == RUN and "Cancelled" in rows[-1].payload["why"]
