"""Model cards (Annex IV + SR 11-7), regulator exports and gathering a card's inputs."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from riskops import audit, catalog, ledger
from riskops.compliance import (
    ANNEX_IV_SECTIONS,
    CardInputs,
    build_card,
    gather_card_inputs,
    verify_export,
    write_regulator_export,
)
from riskops.compliance.facts import fmt, gate_rows
from riskops.db import session_scope
from riskops.records import (
    DatasetVersion,
    FeatureSetRecord,
    ModelVersionRecord,
    PromotionRecord,
    SignOffRecord,
    ValidationRecord,
)

SHA = "ab" * 32
SIGNING_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))  # fixed: byte-identical runs
WHEN = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
SR_11_7_HEADINGS = (
    "Conceptual soundness",
    "Benchmark comparison",
    "Outcomes analysis",
    "Ongoing monitoring",
    "Limitations",
)


def _png(path: Path, colour: str) -> Path:
    figure = Figure(figsize=(1, 1), dpi=20)
    FigureCanvasAgg(figure)
    figure.add_subplot().plot([0, 1], [0, 1], color=colour)
    figure.savefig(path, format="png")
    return path


@pytest.fixture(scope="module")
def plots(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("plots")
    return {"roc": _png(folder / "roc.png", "red"), "fairness_gender": _png(folder / "f.png", "b")}


def _gate(name, passed, value, threshold, comparison=">=", skipped=False, evidence=None):
    return {
        "name": name,
        "passed": passed,
        "skipped": skipped,
        "value": value,
        "threshold": threshold,
        "comparison": comparison,
        "message": f"{name} says so",
        "evidence": evidence or {},
        "plots": [],
    }


def _groups(rows):
    return [
        {"group": g, "n": n, "approval_rate": a, "true_positive_rate": t, "included": n >= 50}
        for g, n, a, t in rows
    ]


REPORT = {
    "passed": False,
    "failed": ["calibration.ece"],
    "context": {"thresholds": {"min_auc": 0.7, "min_ks": 0.2, "max_ece": 0.05}},
    "results": [
        _gate("discrimination.auc", True, 0.81, 0.7),
        _gate("discrimination.ks", True, 0.205, 0.2),  # marginal
        _gate("champion.auc_drop", True, None, 0.01, "<=", skipped=True),
        _gate("calibration.ece", False, 0.08, 0.05, "<="),
        _gate(
            "fairness.gender",
            True,
            0.9,
            0.8,
            evidence={
                "disparate_impact": 0.9,
                "decision_threshold": 0.3,
                "min_group_size": 50,
                "excluded_groups": ["other"],
                "groups": _groups(
                    [("female", 900, 0.72, 0.61), ("male", 880, 0.8, 0.66), ("other", 12, 0.5, 0.5)]
                ),
            },
        ),
    ],
}
LINEAGE = {
    "model_version": {
        "model": "credit-scoring",
        "version": "3",
        "run_id": "run-3",
        "trainer": "tom",
        "feature_set_id": "credit-scoring-fs1",
        "registered_at": "2025-02-28T10:00:00",
        "source": "pipeline",
    },
    "feature_set": {
        "id": "credit-scoring-fs1",
        "version": "fs1",
        "row_count": 5000,
        "definitions_hash": "d" * 64,
        "code_version": "abc123",
    },
    "dataset_version": {"id": f"credit-scoring-{SHA[:16]}", "sha256": SHA, "row_count": 5000},
    "landed": {"filename": "applications-2025-02.csv", "sha256": SHA, "size_bytes": 123456},
}
TRAINING = {
    "run_id": "run-3",
    "benchmark_run_id": "run-2",
    "algorithm": "lightgbm",
    "params": {"learning_rate": "0.05", "num_leaves": "31"},
    "metrics": {"holdout_auc": 0.81, "train_auc": 0.85, "holdout_ks": 0.41, "holdout_brier": 0.1},
    "benchmark_metrics": {"holdout_auc": 0.78, "holdout_ks": 0.38, "holdout_brier": 0.11},
    "split": {
        "method": "time",
        "test_share": 0.2,
        "time_column": "applied_at",
        "train_rows": 4000,
        "holdout_rows": 1000,
        "holdout_positives": 80,
    },
}
SIGN_OFFS = [
    {
        "approver": "tom",
        "decision": "approve",
        "justification": "looks good to me",
        "accepted": False,
        "refusal": "four-eyes rule: tom trained credit-scoring v3",
        "demo": False,
        "decided_at": "2025-03-01T09:00:00",
    },
    {
        "approver": "demo-officer",
        "decision": "approve",
        "justification": "demo auto-approval",
        "accepted": True,
        "refusal": None,
        "demo": True,
        "decided_at": "2025-03-01T09:05:00",
    },
]
PROMOTIONS = [
    {
        "version": "3",
        "previous_version": "2",
        "kind": "promote",
        "actor": "riskops",
        "reason": "approved",
        "moved_at": "2025-03-01T09:06:00",
    },
]


def _inputs(spec, plots, **changes) -> CardInputs:
    fields = {
        "spec": spec,
        "version": "3",
        "lineage": LINEAGE,
        "training": TRAINING,
        "validation": REPORT,
        "sign_offs": SIGN_OFFS,
        "promotions": PROMOTIONS,
        "plots": plots,
        "generated_at": WHEN,
    }
    return CardInputs(**{**fields, **changes})


@pytest.fixture
def card(credit_spec, plots):
    return build_card(_inputs(credit_spec, plots))


def test_html_has_the_nine_annex_iv_headings_in_order_and_the_sr_11_7_parts(card):
    html = card.to_html()
    headings = re.findall(r"<h2>(\d)\. ([^<]+)</h2>", html)
    assert headings == [(str(i), title) for i, title in enumerate(ANNEX_IV_SECTIONS, start=1)]
    assert len(ANNEX_IV_SECTIONS) == 9
    subheadings = re.findall(r"<h3>([^<]+?)(?: <span|</h3>)", html)
    for name in SR_11_7_HEADINGS:
        assert name in subheadings
    assert "To be completed by the provider" in html
    section8 = html.split("<h2>8. ")[1].split("<h2>9. ")[0]
    assert "To be completed by the provider" in section8


def test_html_is_self_contained_with_every_plot_embedded(card, plots):
    html = card.to_html()
    assert html.count("data:image/png;base64,") == len(plots) == 2
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.IGNORECASE)
    assert "http://" not in html and "https://" not in html
    assert "<style>" in html and "<link" not in html and "<script" not in html


def test_card_shows_identity_lineage_approvals_and_promotions(card):
    md = card.to_markdown()
    for text in (
        "credit-scoring",
        "high",
        "credit-risk-team",
        "applications-2025-02.csv",
        SHA,
        "fs1",
        "run-3",
        "four-eyes rule",
    ):
        assert text in md
    assert "DEMO demo-officer" in md and "REFUSED" in md
    assert '<span class="demo">DEMO</span> demo-officer' in card.to_html()
    assert "| promote | 3 | 2 | riskops | approved | ◀ |" in md


def test_markdown_and_json_agree_on_gate_results(card):
    md = card.to_markdown()
    header = "| gate | value | threshold | result | message |"
    table = md.split(header)[1].split("\n\n")[0].strip().splitlines()[1:]
    cells = [[c.strip() for c in line.strip("|").split(" | ")] for line in table]
    gates = card.to_dict()["validation"]["gates"]
    assert [(c[0], c[1], c[3]) for c in cells] == [
        (g["name"], fmt(g["value"]), g["status"]) for g in gates
    ]
    assert [g["status"] for g in gates] == ["pass", "pass", "skipped", "FAIL", "pass"]
    assert json.loads(json.dumps(card.to_dict())) == card.to_dict()


def test_fairness_benchmark_and_limitations_come_from_the_records(card):
    data = card.to_dict()
    (gender,) = [f for f in data["fairness"] if f["attribute"] == "gender"]
    ratios = {g["group"]: g["disparate_impact"] for g in gender["groups"]}
    assert ratios["female"] == pytest.approx(0.9) and ratios["other"] is None
    (age,) = [f for f in data["fairness"] if f["attribute"] == "age"]
    assert not age["available"]
    assert "Fairness by age: not available yet" in card.to_markdown()
    assert [r["metric"] for r in data["benchmark"]["rows"]] == ["auc", "ks", "brier"]
    limits = " ".join(data["limitations"])
    for text in (
        "calibration.ece failed",
        "discrimination.ks passed only marginally",
        "groups other",
        "Limited data: only 4,000",
        "Only 80 positive",
    ):
        assert text in limits
    plan = data["outcomes_plan"]
    assert plan["label_delay"] == "12 months" and ["min_auc", "0.7"] in plan["thresholds"]
    assert "PSI ≥ 0.25" in card.to_markdown()


def test_missing_inputs_say_not_available_yet(credit_spec):
    bare = build_card(
        _inputs(
            credit_spec, {}, lineage=None, training={}, validation=None, sign_offs=[], promotions=[]
        )
    )
    md, html = bare.to_markdown(), bare.to_html()
    for text in (
        "Validation: not available yet",
        "Data lineage: not available yet",
        "Sign-off: not available yet",
        "Promotions and rollbacks: not available yet",
        "Benchmark comparison: not available yet",
        "Plots: not available yet",
    ):
        assert text in md and text in html
    assert re.findall(r"^## (\d)\. ", md, re.MULTILINE) == [str(i) for i in range(1, 10)]
    assert not bare.to_dict()["validation"]["available"]
    assert "data:image/png" not in html


def test_families_without_a_benchmark_say_so(credit_spec, plots):
    fraud = credit_spec.model_copy(update={"family": "fraud_detection"})
    training = {**TRAINING, "benchmark_metrics": None, "benchmark_run_id": None}
    card = build_card(_inputs(fraud, plots, training=training))
    assert "No benchmark was trained for this family (fraud_detection)" in card.to_markdown()


def test_a_real_gate_report_renders(credit_spec):
    from riskops.validation.results import GateReport, GateResult

    report = GateReport(
        (GateResult("discrimination.auc", True, 0.8, 0.7, ">=", "Holdout AUC ok"),), {}
    ).to_dict()
    card = build_card(_inputs(credit_spec, {}, validation=report))
    assert card.to_dict()["validation"]["gates"][0]["status"] == "pass"
    assert "| discrimination.auc | 0.8 | >= 0.7 | pass |" in card.to_markdown()
    brief = {"passed": True, "failed": [], "gates": [_gate("discrimination.ks", True, 0.3, 0.2)]}
    assert gate_rows(brief)[0]["status"] == "pass" and not gate_rows(brief)[0]["marginal"]


@pytest.fixture
def proof(engine):
    with session_scope(engine) as session:
        for action in ("model.registered", "signoff.approve", "model.promoted"):
            audit.append(
                session=session,
                actor="t",
                action=action,
                subject="credit-scoring/3",
                payload={"n": 1},
            )
        audit.append(session=session, actor="t", action="x", subject="other/1", payload={})
    with session_scope(engine) as session:
        rows = [
            r.model_dump(mode="json")
            for r in audit.rows_for_subject(session=session, subject_prefix="credit-scoring/3")
        ]
        return rows, audit.chain_proof(session=session, seqs=[r["seq"] for r in rows])


def _export(card, proof, out, extra) -> Path:
    rows, chain = proof
    return write_regulator_export(
        out_path=out,
        card=card,
        gate_report=REPORT,
        lineage=LINEAGE,
        audit_rows=rows,
        chain_proof=chain,
        approvals=SIGN_OFFS,
        data_profiles=None,
        signing_key=SIGNING_KEY,
        extra_files=extra,
    )


def _rewrite(path: Path, name: str, data: bytes) -> None:
    with zipfile.ZipFile(path) as archive:
        files = {info.filename: archive.read(info) for info in archive.infolist()}
    files[name] = data
    with zipfile.ZipFile(path, "w") as archive:
        for entry, content in files.items():
            archive.writestr(entry, content)


def test_export_manifest_matches_and_verifies(card, proof, tmp_path):
    extra = {"notes/validator.txt": tmp_path / "v.txt"}
    extra["notes/validator.txt"].write_text("checked\n")
    path = _export(card, proof, tmp_path / "export.zip", extra)
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        manifest = json.loads(archive.read("MANIFEST.json"))
        for item in manifest["files"]:
            assert hashlib.sha256(archive.read(item["path"])).hexdigest() == item["sha256"]
        assert "verify_proof" in archive.read("README.txt").decode()
        assert json.loads(archive.read("data_profiles.json"))["status"] == "not available yet"
    assert names == sorted(names)
    for required in (
        "card.md",
        "card.html",
        "card.json",
        "gate_report.json",
        "gate_report.md",
        "lineage.json",
        "audit/rows.json",
        "audit/chain_proof.json",
        "approvals.json",
        "data_profiles.json",
        "README.txt",
        "notes/validator.txt",
        "plots/roc.png",
        "MANIFEST.json",
    ):
        assert required in names
    assert {f["path"] for f in manifest["files"]} == set(names) - {"MANIFEST.json", "MANIFEST.sig"}
    assert verify_export(path) == []


def test_tampering_with_a_file_is_named(card, proof, tmp_path):
    path = _export(card, proof, tmp_path / "export.zip", None)
    _rewrite(path, "card.md", b"# a friendlier card\n")
    assert verify_export(path) == ["card.md: SHA-256 differs from the manifest"]


def test_a_broken_chain_proof_is_reported(card, proof, tmp_path):
    rows, chain = proof
    forged = {**chain, "rows": [{**chain["rows"][0], "row_hash": "f" * 64}, *chain["rows"][1:]]}
    path = _export(card, (rows, forged), tmp_path / "export.zip", None)
    problems = verify_export(path)
    assert "audit/chain_proof.json: the proof does not verify" in problems
    assert any("row 1 is not covered" in p for p in problems)


def test_two_exports_of_the_same_inputs_are_byte_identical(card, proof, tmp_path):
    first = _export(card, proof, tmp_path / "a" / "export.zip", None)
    second = _export(card, proof, tmp_path / "b" / "export.zip", None)
    assert first.read_bytes() == second.read_bytes()


class FakeClient:
    """The MLflow client methods gather uses, over a folder of artifacts per run."""

    def __init__(self, store: Path, versions: dict, runs: dict) -> None:
        self.store, self.versions, self.runs = store, versions, runs

    def get_model_version(self, name, version):
        from mlflow.exceptions import MlflowException

        if (name, version) not in self.versions:
            raise MlflowException(f"no version {version} of {name}")
        return self.versions[(name, version)]

    def get_run(self, run_id):
        from mlflow.exceptions import MlflowException

        if run_id not in self.runs:
            raise MlflowException(f"no run {run_id}")
        return self.runs[run_id]

    def download_artifacts(self, run_id, path, dst_path=None):
        source = self.store / run_id / path
        if not source.exists():
            raise OSError(f"no artifact {path} in run {run_id}")
        target = Path(dst_path) / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy(source, target)
        return str(target)


def _run(metrics, tags=None):
    return SimpleNamespace(
        data=SimpleNamespace(metrics=metrics, params={"seed": "42"}, tags=tags or {})
    )


def test_gather_pulls_records_and_mlflow(engine, credit_spec, plots, tmp_path):
    store = tmp_path / "store"
    (store / "run-3" / "plots").mkdir(parents=True)
    (store / "run-3" / "validation" / "plots").mkdir(parents=True)
    shutil.copy(plots["roc"], store / "run-3" / "plots" / "roc.png")
    shutil.copy(plots["roc"], store / "run-3" / "validation" / "plots" / "roc.png")
    (store / "run-3" / "holdout").mkdir()
    (store / "run-3" / "holdout" / "split.json").write_text(json.dumps(TRAINING["split"]))
    client = FakeClient(
        store,
        {
            ("credit-scoring", "3"): SimpleNamespace(
                run_id="run-3",
                tags={
                    "riskops.run_id": "run-3",
                    "riskops.benchmark_run_id": "run-2",
                    "riskops.algorithm": "lightgbm",
                },
            )
        },
        {
            "run-3": _run(TRAINING["metrics"], {"riskops.trainer": "tom"}),
            "run-2": _run(TRAINING["benchmark_metrics"]),
        },
    )
    with session_scope(engine) as session:
        ledger.record_landing(
            session=session,
            model="credit-scoring",
            sha256=SHA,
            uri="file:///l/a.csv",
            filename="a.csv",
            size_bytes=9,
        )
        ledger.add_dataset_version(
            session=session,
            version=DatasetVersion(
                id=f"credit-scoring-{SHA[:16]}",
                model="credit-scoring",
                sha256=SHA,
                uri="file:///d",
                source_uri="file:///s",
                row_count=9,
                columns=["x"],
                spec_hash="c" * 64,
            ),
        )
        catalog.add_feature_set(
            session=session,
            record=FeatureSetRecord(
                id="credit-scoring-fs1",
                model="credit-scoring",
                version="fs1",
                dataset_version_id=f"credit-scoring-{SHA[:16]}",
                uri="file:///f",
                row_count=9,
                definitions_hash="d" * 64,
                code_version="abc",
                manifest={"skipped_features": [{"name": "tenure", "missing": ["opened_at"]}]},
            ),
        )
        catalog.add_model_version(
            session=session,
            record=ModelVersionRecord(
                model="credit-scoring",
                version="3",
                run_id="run-3",
                feature_set_id="credit-scoring-fs1",
                dataset_version_id=f"credit-scoring-{SHA[:16]}",
                trainer="tom",
            ),
        )
        session.add(
            ValidationRecord(
                model="credit-scoring",
                version="3",
                passed=False,
                failed_gates=["calibration.ece"],
                report=REPORT,
                validator="val",
            )
        )
        for row in SIGN_OFFS:
            session.add(
                SignOffRecord(
                    model="credit-scoring",
                    version="3",
                    **{k: v for k, v in row.items() if k != "decided_at"},
                )
            )
        session.add(
            PromotionRecord(
                model="credit-scoring",
                version="3",
                previous_version="2",
                kind="promote",
                actor="riskops",
            )
        )
    with session_scope(engine) as session:
        got = gather_card_inputs(
            session=session,
            client=client,
            spec=credit_spec,
            model="credit-scoring",
            version="3",
            workdir=tmp_path / "w",
            generated_at=WHEN,
        )
        bare = gather_card_inputs(
            session=session,
            client=client,
            spec=credit_spec,
            model="credit-scoring",
            version="9",
            workdir=tmp_path / "w9",
        )
    assert got.lineage["landed"]["filename"] == "a.csv"
    assert got.training["benchmark_metrics"]["holdout_auc"] == 0.78
    assert got.training["split"]["method"] == "time" and got.training["algorithm"] == "lightgbm"
    assert got.training["skipped_features"][0]["name"] == "tenure"
    assert got.validation["validator"] == "val" and len(got.sign_offs) == 2
    assert sorted(got.plots) == ["roc", "validation_roc"] and got.synthetic_data is True
    card = build_card(got)
    assert card.to_html().count("data:image/png;base64,") == 2
    assert "Feature tenure was skipped" in card.to_markdown()
    assert bare.lineage is None and bare.training == {} and bare.validation is None
    assert "Data lineage: not available yet" in build_card(bare).to_markdown()


def test_the_card_lists_the_specs_per_feature_drift_overrides(credit_spec, all_specs):
    fraud = all_specs["fraud-detection"]
    md = build_card(_inputs(fraud, {})).to_markdown()
    row = next(line for line in md.splitlines() if line.startswith("| mcc |"))
    assert row.split("|")[2:5] == [
        " model value ",
        " model value ",
        " watch from 0.03, alert from 0.1 ",
    ]
    assert "Rows in new categories (share)" in md and "watch from 0.01, alert from 0.05" in md
    assert "feature (spec override)" not in build_card(_inputs(credit_spec, {})).to_markdown()
