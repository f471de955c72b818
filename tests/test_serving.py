"""The scoring service over real HTTP: the three protocols, bad input, keys, metrics, the
decision log, reloads under load, refused artifacts and shadow scoring.

One fraud-detection platform per module (velocity features exercise the online store); the
tests that move the champion run last, in file order.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest
from mlflow.models import convert_input_example_to_serving_input
from prometheus_client.parser import text_string_to_metric_families

from riskops.db import session_scope
from riskops.features.pandas_build import build_features_pandas
from riskops.features.plan import FeaturePlan
from riskops.identity.principals import revoke_principal
from riskops.records import FeatureSetRecord
from riskops.serving.decision import input_digest
from riskops.serving.decision_files import read_decisions
from riskops.serving.requests import request_records
from riskops.serving.server import build_service
from riskops.settings import load_settings
from tests.serving_helpers import PSEUDONYM_KEY, ServingPlatform, running

MODEL = "fraud-detection"
pytestmark = [pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning")]


class Stack:
    """The platform, the running service, its URL and keys."""

    def __init__(self, sp: ServingPlatform, service, base: str, keys: dict[str, str]) -> None:
        self.sp, self.service, self.base, self.keys = sp, service, base, keys
        self.announced: list[tuple[str, str, str]] = []

    def post(self, path: str, body, key: str = "service", **kw) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys[key]}"} if key else {}
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        headers["Content-Type"] = kw.pop("content_type", "application/json")
        return httpx.post(self.base + path, content=data, headers=headers, timeout=30, **kw)

    def get(self, path: str, key: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys[key]}"} if key else {}
        return httpx.get(self.base + path, headers=headers, timeout=30)

    def metric(self, name: str, **labels: str) -> float:
        text = self.get("/metrics").text
        total = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    total += sample.value
        return total


def _settings(root: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RISKOPS_HOME", str(root))
    monkeypatch.setenv("RISKOPS_SCORING_KEY_REFRESH_SECONDS", "0.2")
    monkeypatch.setenv("RISKOPS_SCORING_REGISTRY_POLL_SECONDS", "3600")
    monkeypatch.setenv("RISKOPS_SCORING_DECISION_LOG_FLUSH_SECONDS", "0.2")
    monkeypatch.setenv("RISKOPS_SCORING_MAX_BODY_BYTES", "65536")
    monkeypatch.setenv("RISKOPS_SCORING_MAX_BATCH_RECORDS", "200")
    return load_settings()


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("serving")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)  # MLflow's default artifact root is ./mlruns
        sp = ServingPlatform(root, MODEL, "fraud_detection", rows=12_000)
        sp.versions = [sp.train(seed=1)]
        sp.promote(sp.versions[0])
        yield sp
    sp.engine.dispose()


@pytest.fixture(scope="module")
def stack(platform: ServingPlatform):
    with pytest.MonkeyPatch.context() as patch:
        settings = _settings(platform.root, patch)
        keys = {
            "service": platform.key("checkout-api", "service"),
            "operator": platform.key("oscar.oncall@bank.example", "operator"),
            "officer": platform.key("bea.officer@bank.example", "risk-officer"),
        }
        holder: list[Stack] = []

        def announce(model: str, role: str, why: str) -> None:
            holder[0].announced.append((model, role, why))

        service = build_service(settings, platform.platform, follow_events=False, announce=announce)
        with running(service.app()) as base:
            holder.append(Stack(platform, service, base, keys))
            yield holder[0]


def _records(stack: Stack, n: int, start: int = 0) -> list[dict]:
    rows = stack.sp.raw_records(n, start)
    return [{k: v for k, v in r.items() if k in stack.service.models.champion(MODEL).schema.fields}
            for r in rows]  # fmt: skip


# --- the riskops protocol ---------------------------------------------------------------------


def test_one_record_gets_a_decision_with_score_band_version_and_id(stack):
    record = _records(stack, 1)[0]
    response = stack.post(f"/v1/models/{MODEL}/score", record)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == MODEL and body["version"] == stack.sp.versions[0]
    assert 0.0 <= body["score"] <= 1.0 and len(body["decision_id"]) == 32
    assert body["band"] in ("approve", "refer", "decline")
    assert ("reasons" in body) == (body["band"] != "approve")


def test_declines_and_referrals_carry_exact_treeshap_reasons_in_words(stack):
    records = _records(stack, 200, start=100)
    response = stack.post(
        f"/v1/models/{MODEL}/score", {"records": records}, params={"explain": "true"}
    )
    assert response.status_code == 200, response.text
    decisions = response.json()["decisions"]
    assert len(decisions) == 200
    served = stack.service.models.champion(MODEL)
    # every decision was explained (explain=true); check the contributions against LightGBM's own
    rows = [
        served.builder.compute(served.schema.check(r, "")[0], record_event=False)
        for r in records[:20]
    ]
    matrix = served.engine.matrix([r.features for r in rows])
    lgb = served.engine.booster.predict(matrix, pred_contrib=True)[:, :-1]
    for i, decision in enumerate(decisions[:20]):
        assert decision["reasons"] and all(isinstance(t, str) and t for t in decision["reasons"])
        grouped: dict[str, float] = {}
        for name, value in zip(served.engine.inputs, lgb[i], strict=True):
            label = served.groups[name]
            grouped[label] = grouped.get(label, 0.0) + value
        for code in decision["reason_codes"]:
            assert code["contribution"] == pytest.approx(grouped[code["feature"]], abs=1e-6)
            assert code["contribution"] > 0
    plain = stack.post(f"/v1/models/{MODEL}/score", {"records": records[:50]}).json()["decisions"]
    assert all(("reasons" in d) == (d["band"] != "approve") for d in plain)


# --- MLflow's scoring protocol -----------------------------------------------------------------


def _fresh(records: list[dict], tag: str) -> list[dict]:
    """The records as first events of cards and merchants never seen: their velocity features
    do not depend on what was scored before, so every protocol must give the same scores."""
    return [
        {**r, "card_id": f"card-{tag}-{i}", "merchant_id": f"merchant-{tag}-{i}"}
        for i, r in enumerate(records)
    ]


def test_mlflow_scoring_protocol_in_all_its_formats(stack):
    records = _records(stack, 5, start=400)
    reference = stack.post(f"/v1/models/{MODEL}/score", {"records": _fresh(records, "ref")})
    want = [d["score"] for d in reference.json()["decisions"]]
    bodies = {
        "dataframe_split": lambda r: orjson.loads(  # MLflow's own helper builds this one
            convert_input_example_to_serving_input(pd.DataFrame(r))
        ),
        "dataframe_records": lambda r: {"dataframe_records": r},
        "inputs records": lambda r: {"inputs": r},
        "inputs columns": lambda r: {"inputs": {c: [x[c] for x in r] for c in r[0]}},
    }
    for label, body in bodies.items():
        response = stack.post(f"/v1/models/{MODEL}/invocations", body(_fresh(records, label)))
        assert response.status_code == 200, (label, response.text)
        assert response.json()["predictions"] == pytest.approx(want, abs=1e-12), label
    split = bodies["dataframe_split"](records)
    assert stack.post(f"/v1/models/{MODEL}/invocations", {"records": records}).status_code == 400
    wrong_type = stack.post(f"/v1/models/{MODEL}/invocations", split, content_type="text/csv")
    assert wrong_type.status_code == 415
    twice = {"dataframe_split": {"columns": ["amount", "amount"], "data": [[1.0, 2.0]]}}
    assert stack.post(f"/v1/models/{MODEL}/invocations", twice).status_code == 422


def test_mlflow_and_v2_declines_get_their_reasons_in_the_log(stack):
    frauds = stack.sp.raw.index[stack.sp.raw["is_fraud"] == 1][:150]
    fields = stack.service.models.champion(MODEL).schema.fields
    sent = [{k: v for k, v in stack.sp.raw_records(1, int(i))[0].items() if k in fields}
            for i in frauds]  # fmt: skip
    response = stack.post(f"/v1/models/{MODEL}/invocations", {"dataframe_records": sent})
    assert response.status_code == 200 and "reason" not in response.text
    assert stack.service.decisions.flush(30)
    logged = read_decisions(stack.sp.lake, stack.sp.engine, MODEL)
    digests = {input_digest(r, PSEUDONYM_KEY.encode()) for r in sent}
    mine = logged[logged["input_sha256"].isin(digests) & (logged["endpoint"] == "invocations")]
    assert len(mine) == len(sent)
    adverse = mine[mine["band"] != "approve"]
    assert len(adverse) > 0, "the test needs referrals or declines"
    assert all(len(codes) > 0 for codes in adverse["reason_codes"])
    assert all(len(codes) == 0 for codes in mine.loc[mine["band"] == "approve", "reason_codes"])
    # Computed by the writer, off the request path: the same reasons the request path gives.
    served = stack.service.models.champion(MODEL)
    for _, row in adverse.head(20).iterrows():
        features = {n: row[f"feature.{n}"] for n in served.engine.inputs}
        features = {n: (None if isinstance(v, float) and v != v and n in served.engine.categorical
                        else v) for n, v in features.items()}  # fmt: skip
        contributions = served.engine.contributions(served.engine.matrix([features]))
        assert row["reason_codes"] == [
            r.to_dict() for r in served.reasons(contributions[0], features)
        ]
    # The V2 answer carries no reasons either; its declines get theirs in the log the same way.
    more = [{k: v for k, v in stack.sp.raw_records(1, int(i))[0].items() if k in fields}
            for i in frauds[:60]]  # fmt: skip
    response = stack.post(f"/v2/models/{MODEL}/infer", _v2_body(more))
    assert response.status_code == 200 and "reason" not in response.text
    assert stack.service.decisions.flush(30)
    logged = read_decisions(stack.sp.lake, stack.sp.engine, MODEL)
    v2 = logged[logged["endpoint"] == "v2"]
    assert len(v2) >= len(more)
    adverse = v2.loc[v2["band"] != "approve", "reason_codes"]
    assert len(adverse) > 0 and all(len(codes) > 0 for codes in adverse)


# --- Open Inference Protocol (V2) ---------------------------------------------------------------


def _v2_body(records: list[dict]) -> dict:
    """A request as MLServer's PandasCodec and KServe's InferInput build it: one tensor per
    column, BYTES for text, FP64 for numbers."""
    inputs = []
    for column in records[0]:
        values = [r[column] for r in records]
        numeric = all(isinstance(v, int | float) or v is None for v in values)
        inputs.append(
            {
                "name": column,
                "shape": [len(values), 1],
                "datatype": "FP64" if numeric else "BYTES",
                "parameters": {"content_type": "np" if numeric else "str"},
                "data": values,
            }
        )
    return {"id": "req-42", "parameters": {"content_type": "pd"}, "inputs": inputs}


def test_open_inference_protocol_v2(stack):
    assert stack.get("/v2/health/live").status_code == 200
    assert stack.get("/v2/health/ready").status_code == 200
    assert stack.get(f"/v2/models/{MODEL}/ready").status_code == 200
    assert stack.get("/v2/models/no-such-model/ready").status_code == 503
    meta = stack.get(f"/v2/models/{MODEL}").json()
    assert meta["name"] == MODEL and meta["versions"] == [stack.sp.versions[0]]
    assert {i["name"] for i in meta["inputs"]} == set(_records(stack, 1)[0])
    records = _records(stack, 3, start=500)
    reference = stack.post(f"/v1/models/{MODEL}/score", {"records": _fresh(records, "v2ref")})
    response = stack.post(f"/v2/models/{MODEL}/infer", _v2_body(_fresh(records, "v2")))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_name"] == MODEL and body["id"] == "req-42"
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["probability"]["datatype"] == "FP64" and outputs["probability"]["shape"] == [
        3,
        1,
    ]
    assert outputs["probability"]["data"] == pytest.approx(
        [d["score"] for d in reference.json()["decisions"]], abs=1e-12
    )
    assert outputs["band"]["data"] == [d["band"] for d in reference.json()["decisions"]]
    bad = stack.post(f"/v2/models/{MODEL}/infer", {"inputs": [{"name": "amount"}]})
    assert bad.status_code in (400, 422) and "datatype" in bad.json()["error"]
    body = _v2_body(records)
    for broken in (
        {**body, "id": "x" * 201},
        {**body, "inputs": [{**body["inputs"][0], "datatype": ["FP64"]}]},
        {**body, "inputs": [{**body["inputs"][0], "shape": [True, 1]}]},
        {**body, "inputs": [*body["inputs"], body["inputs"][0]]},
    ):
        response = stack.post(f"/v2/models/{MODEL}/infer", broken)
        assert response.status_code == 422, response.text


# --- bad input ----------------------------------------------------------------------------------


def test_each_class_of_bad_input_gets_a_4xx_naming_the_field(stack):
    good = _records(stack, 1, start=600)[0]
    url = f"/v1/models/{MODEL}/score"

    def problems(body) -> dict[str, str]:
        response = stack.post(url, body)
        assert response.status_code == 422, response.text
        return {p["field"]: p["message"] for p in response.json()["problems"]}

    assert "expected a number" in problems({**good, "amount": "12.50"})["amount"]
    assert "below the minimum" in problems({**good, "amount": -3})["amount"]
    assert "missing" in problems({k: v for k, v in good.items() if k != "mcc"})["mcc"]
    assert "unknown field" in problems({**good, "shoe_size": 42})["shoe_size"]
    assert "is not one of" in problems({**good, "channel": "carrier-pigeon"})["channel"]
    assert "ISO-8601" in problems({**good, "event_time": "yesterday"})["event_time"]
    assert "in the future" in problems({**good, "event_time": "9999-12-31T00:00:00"})["event_time"]
    assert "before 1970" in problems({**good, "event_time": "1969-12-31T23:59:59Z"})["event_time"]
    assert "must not be null" in problems({**good, "card_id": None})["card_id"]
    several = problems({"records": [good, {**good, "amount": True, "country": 7}]})
    assert set(several) == {"records[1].amount", "records[1].country"}
    assert stack.post(url, b"{not json").status_code == 400
    assert stack.post(url, b"").status_code == 400
    assert stack.post(url, [1, 2]).status_code == 422
    assert stack.post(url, {"records": []}).status_code == 422
    assert stack.post(url, {"records": [good] * 201}).status_code == 413
    assert stack.post(url, b"{" + b" " * 70_000 + b"}").status_code == 413
    assert stack.post("/v1/models/no-such-model/score", good).status_code == 404
    assert (
        stack.metric("riskops_scoring_validation_failures_total", model=MODEL, field="amount") >= 2
    )


def test_no_input_produces_a_5xx(stack):
    good = _records(stack, 1, start=610)[0]
    rng = np.random.default_rng(3)
    junk = [None, True, -1e308, 1e308, "", "x" * 300, [], {}, [[1]], {"a": {"b": 1}}, 0]
    for _ in range(300):
        record = dict(good)
        for name in rng.choice(list(good), size=rng.integers(1, 4), replace=False):
            record[str(name)] = junk[rng.integers(len(junk))]
        for path in ("score", "invocations", "v2"):
            body = record if path == "score" else {"dataframe_records": [record]}
            url = f"/v1/models/{MODEL}/{path}"
            if path == "v2":
                body, url = _v2_body([record]), f"/v2/models/{MODEL}/infer"
                tensor = body["inputs"][rng.integers(len(body["inputs"]))]
                tensor[["datatype", "shape", "data", "name"][rng.integers(4)]] = junk[
                    rng.integers(len(junk))
                ]
            response = stack.post(url, body)
            assert response.status_code < 500, (body, response.text)
    assert stack.metric("riskops_scoring_errors_total") == 0


def test_unseen_categories_go_to_the_unseen_bucket_and_are_counted(stack):
    record = {**_records(stack, 1, start=620)[0], "mcc": "9999-never-seen"}
    before = stack.metric("riskops_scoring_unseen_categories_total", model=MODEL, feature="mcc")
    response = stack.post(f"/v1/models/{MODEL}/score", record)
    assert response.status_code == 200 and response.json()["unseen_categories"] == ["mcc"]
    after = stack.metric("riskops_scoring_unseen_categories_total", model=MODEL, feature="mcc")
    assert after == before + 1


# --- keys ---------------------------------------------------------------------------------------


def test_keys_roles_and_open_endpoints(stack, caplog):
    caplog.set_level("DEBUG")
    record = _records(stack, 1, start=630)[0]
    url = f"/v1/models/{MODEL}/score"
    missing = stack.post(url, record, key=None)
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"] == "Bearer"
    stack.keys["bogus"] = "rk_not-a-key-of-this-platform"
    assert stack.post(url, record, key="bogus").status_code == 401
    assert stack.post(url, record, key="officer").status_code == 403
    assert stack.post(url, record, key="operator").status_code == 200
    assert stack.post(f"/admin/models/{MODEL}/reload", {}, key="service").status_code == 403
    assert (
        stack.get("/health/live").status_code == 200
        and stack.get("/health/ready").status_code == 200
    )
    assert stack.get("/metrics").status_code == 200  # open on the loopback
    # a revoked key stops working within the refresh interval
    key = stack.sp.key("old-batch-job", "service")
    stack.keys["old"] = key
    deadline = time.monotonic() + 5
    while stack.post(url, record, key="old").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stack.post(url, record, key="old").status_code == 200
    with session_scope(stack.sp.engine) as session:
        revoke_principal(session=session, name="old-batch-job", actor="admin")
    deadline = time.monotonic() + 5
    while stack.post(url, record, key="old").status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stack.post(url, record, key="old").status_code == 401
    assert all(k not in caplog.text for k in stack.keys.values())


def test_metrics_show_latency_bands_scores_and_the_served_version(stack):
    version = stack.sp.versions[0]
    count = stack.metric("riskops_scoring_request_duration_seconds_count",
                         model=MODEL, version=version, endpoint="score")  # fmt: skip
    assert count >= 5
    bands = sum(
        stack.metric("riskops_scoring_decisions_total", model=MODEL, version=version, band=b)
        for b in ("approve", "refer", "decline")
    )
    assert bands == stack.metric("riskops_scoring_score_count", model=MODEL, version=version)
    assert stack.metric("riskops_model_current_version", model=MODEL, role="champion") == float(
        version
    )
    assert stack.metric("riskops_model_load_seconds", model=MODEL, version=version) > 0
    text = stack.get("/metrics").text
    assert (
        "riskops_decision_log_queue_depth" in text and "riskops_decision_log_dropped_total" in text
    )


def test_openapi_document_is_derived_from_the_spec(stack):
    doc = stack.get("/openapi.json").json()
    schema = doc["components"]["schemas"][f"Record-{MODEL}"]
    channel = schema["properties"]["channel"]["anyOf"][0]
    assert channel["enum"] == ["pos", "ecom", "atm", "contactless"]
    amount = schema["properties"]["amount"]["anyOf"][0]
    assert amount == {"type": "number", "minimum": 0.01, "maximum": 100000}
    assert schema["properties"]["event_time"]["format"] == "date-time"
    assert {"card_id", "event_time", "merchant_id", "amount"} <= set(schema["required"])
    assert schema["additionalProperties"] is False
    assert f"/v1/models/{MODEL}/score" in doc["paths"]


# --- the decision log ----------------------------------------------------------------------------


def test_every_decision_is_logged_pseudonymised_with_its_input_hash(stack):
    records = _records(stack, 20, start=700)
    answer = stack.post(f"/v1/models/{MODEL}/score", {"records": records}).json()
    ids = [d["decision_id"] for d in answer["decisions"]]
    assert stack.service.decisions.flush(30)
    rows = read_decisions(stack.sp.lake, stack.sp.engine, MODEL)
    logged = rows.set_index("decision_id").loc[ids]
    raw_cards = {r["card_id"] for r in records}
    assert not set(logged["entity"]) & raw_cards
    assert all(len(e) == 64 for e in logged["entity"])
    expected = [input_digest(r, PSEUDONYM_KEY.encode()) for r in records]
    plain = {
        hashlib.sha256(orjson.dumps(r, option=orjson.OPT_SORT_KEYS)).hexdigest() for r in records
    }
    assert not plain & set(logged["input_sha256"])  # keyed: raw ids cannot be guessed back
    assert list(logged["input_sha256"]) == expected
    assert (logged["version"] == stack.sp.versions[0]).all() and (logged["latency_ms"] > 0).all()
    declined = logged[logged["band"] != "approve"]
    assert all(len(codes) > 0 for codes in declined["reason_codes"])
    assert "feature.amount" in logged.columns and "feature.card_txn_count_24h" in logged.columns
    # The raw request fields as sent (for the monitor's data drift), never an id or a time.
    served = stack.service.models.champion(MODEL)
    kept = {c.removeprefix("input.") for c in logged.columns if c.startswith("input.")}
    assert kept == set(served.input_fields) and {"amount", "mcc"} <= kept
    assert not kept & {"card_id", "merchant_id", "event_time", *served.spec.protected_attributes}
    assert logged["has_inputs"].all()
    for record, (_, row) in zip(records, logged.iterrows(), strict=True):
        assert row["input.amount"] == record["amount"] and row["input.mcc"] == record["mcc"]


# --- online features in the service equal the batch build -------------------------------------


def test_the_service_computes_velocity_features_as_the_batch_build(platform, tmp_path, monkeypatch):
    """A fresh service (empty online store) is sent the stream from its first event, in time
    order; the logged features of every decision equal the pandas build's (itself = Spark's)."""
    settings = _settings(tmp_path, monkeypatch)
    service = build_service(settings, platform.platform, follow_events=False, announce=None)
    key = platform.key("parity-client", "service")
    raw = platform.raw.sort_values("event_time", kind="stable").head(400)
    ids: list[str] = []
    with running(service.app()) as base:
        fields = service.models.champion(MODEL).schema.fields
        records = request_records(raw, list(fields))
        for start in range(0, len(records), 100):
            chunk = {"records": records[start : start + 100]}
            auth = {"Authorization": f"Bearer {key}"}
            url = f"{base}/v1/models/{MODEL}/score"
            response = httpx.post(url, json=chunk, headers=auth, timeout=30)
            assert response.status_code == 200, response.text
            ids += [d["decision_id"] for d in response.json()["decisions"]]
        assert service.decisions.flush(30)
    logged = read_decisions(platform.lake, platform.engine, MODEL).set_index("decision_id")
    with session_scope(platform.engine) as session:
        manifest = session.get(FeatureSetRecord, platform.featureset_id).manifest
    plan = FeaturePlan.from_dict(manifest["plan"])
    expected = build_features_pandas(raw, plan, manifest["vocabulary"], pseudonym_key=PSEUDONYM_KEY)
    logged = logged.loc[ids]  # this service's decisions, in the order they were sent
    expected = expected.reset_index(drop=True)
    logged = logged.reset_index(drop=True)
    for name in plan.features:
        got, want = logged[f"feature.{name}"], expected[name]
        if name in plan.categorical:
            assert list(got) == list(want), name
        else:
            np.testing.assert_allclose(got.astype(float), want.astype(float), rtol=1e-9, atol=1e-9,
                                       err_msg=name)  # fmt: skip


def test_riskops_score_sends_a_file_through_the_service(stack, tmp_path):
    path = tmp_path / "txns.parquet"
    stack.sp.raw.iloc[1100:1140].to_parquet(path)
    env = {**os.environ, "RISKOPS_HOME": str(stack.sp.root), "RISKOPS_SCORING_URL": stack.base,
           "RISKOPS_API_KEY": stack.keys["service"]}  # fmt: skip
    cli = [sys.executable, "-m", "riskops", "score", MODEL, str(path), "--drop", "is_fraud"]
    done = subprocess.run([*cli, "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    decisions = json.loads(done.stdout)
    assert len(decisions) == 40 and {d["version"] for d in decisions} == {stack.sp.versions[0]}
    refused = subprocess.run(cli[:-2], env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "is_fraud: unknown field" in refused.stderr


def test_the_parity_check_falls_back_to_the_models_input_example(stack):
    from riskops.serving.loader import _input_example

    location = stack.sp.client.get_model_version_download_uri(MODEL, stack.sp.versions[0])
    model_dir = next(Path(location.removeprefix("file://")).rglob("MLmodel")).parent
    example = _input_example(model_dir)
    served = stack.service.models.champion(MODEL)
    assert example is not None and len(example) > 0
    assert list(example.columns) == list(served.engine.inputs)
    assert _input_example(stack.sp.root) is None  # no MLmodel here: nothing to check against


# --- reloads: these move the champion, so they run last -----------------------------------------


def test_reload_under_concurrent_load_drops_no_request(stack):
    sp = stack.sp
    sp.versions.append(sp.train(seed=2))
    record = _records(stack, 1, start=800)[0]
    seen: list[tuple[int, str]] = []
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {stack.keys['service']}"}) as client:
            while not stop.is_set():
                response = client.post(f"{stack.base}/v1/models/{MODEL}/score", json=record)
                seen.append((response.status_code, response.json().get("version", "")))

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    sp.promote(sp.versions[1])
    reloaded = stack.post(f"/admin/models/{MODEL}/reload", {}, key="operator")
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join()
    assert reloaded.status_code == 200 and reloaded.json()["champion"] == sp.versions[1]
    codes = {code for code, _ in seen}
    assert codes == {200}, f"failed requests during the reload: {codes}"
    versions = [v for _, v in seen]
    assert versions[0] == sp.versions[0] and versions[-1] == sp.versions[1]
    assert len(seen) > 50


def test_a_corrupt_artifact_is_refused_and_the_old_champion_keeps_serving(stack):
    sp = stack.sp
    bad = sp.train(seed=3)
    location = sp.client.get_model_version_download_uri(MODEL, bad)
    booster = next(Path(location.removeprefix("file://")).rglob("booster.txt"))
    booster.write_text("tree\nthis is not a LightGBM model\n")
    sp.promote(bad)
    failures = stack.metric("riskops_model_load_failures_total", model=MODEL, role="champion")
    response = stack.post(f"/admin/models/{MODEL}/reload", {}, key="operator")
    assert response.status_code == 200
    assert response.json()["champion"] == sp.versions[1]
    assert "does not load" in response.json()["errors"]["champion"]
    scored = stack.post(f"/v1/models/{MODEL}/score", _records(stack, 1, start=900)[0])
    assert scored.status_code == 200 and scored.json()["version"] == sp.versions[1]
    assert stack.metric("riskops_model_load_failures_total", model=MODEL, role="champion") == (
        failures + 1
    )
    assert stack.announced and stack.announced[-1][:2] == (MODEL, "champion")
    assert stack.get("/health/ready").status_code == 200  # the old champion still serves
    sp.promote(sp.versions[1])  # the records go back to the working version


def test_an_alias_moved_outside_the_platform_is_not_served(stack):
    sp = stack.sp
    sp.client.set_registered_model_alias(MODEL, "champion", sp.versions[0])  # by hand in MLflow
    response = stack.post(f"/admin/models/{MODEL}/reload", {}, key="operator")
    assert response.json()["champion"] == sp.versions[1]
    assert "records say" in response.json()["errors"]["champion"]
    sp.client.set_registered_model_alias(MODEL, "champion", sp.versions[1])


def test_the_challenger_shadows_and_is_never_returned(stack):
    sp = stack.sp
    sp.client.set_registered_model_alias(MODEL, "challenger", sp.versions[0])
    response = stack.post(f"/admin/models/{MODEL}/reload", {}, key="operator")
    assert response.json()["challenger"] == sp.versions[0]
    records = _records(stack, 30, start=1000)
    body = stack.post(f"/v1/models/{MODEL}/score", {"records": records}).content
    assert b'"version":"%s"' % sp.versions[1].encode() in body
    assert b'"version":"%s"' % sp.versions[0].encode() not in body
    stack.service.shadow.drain(10)
    assert stack.service.decisions.flush(30)
    shadow = read_decisions(sp.lake, sp.engine, MODEL, role="shadow")
    digests = {input_digest(r, PSEUDONYM_KEY.encode()) for r in records}
    mine = shadow[shadow["input_sha256"].isin(digests)]
    assert len(mine) == 30 and (mine["version"] == sp.versions[0]).all()
    sp.client.delete_registered_model_alias(MODEL, "challenger")


def test_the_service_runs_with_its_own_collector_thresholds(stack):
    # Python's defaults make the collector walk the decision-log queue every few hundred
    # requests (p99 of 62 ms measured on the score-only path): the service sets its own.
    import gc

    assert stack.service.settings.gc_thresholds == (50_000, 50, 100)
    assert gc.get_threshold() == stack.service.settings.gc_thresholds
