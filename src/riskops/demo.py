"""`make demo`: the main job end to end on the embedded stack, narrated in the terminal."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import Engine
from sqlmodel import select

from riskops import catalog, ledger
from riskops.db import session_scope
from riskops.demo_drift import close_the_loop
from riskops.demo_scoring import score_traffic
from riskops.identity.credentials import (
    DEMO_DEVELOPER,
    DEMO_RISK_OFFICER,
    ensure_principal,
    key_file,
)
from riskops.landing.client import land_file, wait_for_check
from riskops.platform import Platform
from riskops.records import (
    DatasetVersion,
    ModelVersionRecord,
    PromotionRecord,
    SignOffRecord,
    ValidationRecord,
)
from riskops.settings import Settings
from riskops.specs import load_spec
from riskops.stack import local
from riskops.stack.runs import RunInfo
from riskops.synthetic import generate

DEMO_MODELS = {
    # model name: (family, rows, file format)
    "credit-scoring": ("credit_scoring", 20_000, "parquet"),
    "fraud-detection": ("fraud_detection", 50_000, "parquet"),
    "transaction-risk": ("transaction_risk", 20_000, "csv"),
}


@dataclass
class DemoLanding:
    model: str
    path: Path
    sha256: str
    landed_at: dt.datetime
    note: str


def make_broken_file(source: Path, out: Path) -> str:
    """A credit file with four classic defects; returns what was broken, for the narration."""
    frame = pd.read_parquet(source).head(2_000).astype(object)
    frame = frame.drop(columns=["income"])
    frame.loc[3, "debt_to_income"] = -0.4
    frame.loc[7, "loan_amount"] = "twelve thousand"
    frame.loc[11, "application_id"] = frame.loc[10, "application_id"]
    frame.loc[15:25, "default_12m"] = "maybe"
    frame.to_csv(out, index=False)
    return "income column dropped, negative DTI, text in loan_amount, duplicate id, bad target"


def run_demo(settings: Settings, console: Console | None = None) -> None:
    console = console or Console(highlight=False)
    project = settings.home.project_dir.resolve()
    console.rule("[bold]riskops demo")
    with console.status("starting the stack (Prefect server, MLflow, worker, watcher)…"):
        summary = local.up(settings)
    console.print(
        f"stack up in {summary['seconds']}s ({', '.join(summary['started']) or 'already running'})"
    )

    platform = Platform.from_settings(settings, with_secrets=False)
    engine = platform.engine
    developer = ensure_principal(
        settings, engine, name=DEMO_DEVELOPER, role="model-developer", demo=True
    )
    console.print(
        f"principals: {DEMO_DEVELOPER} (model-developer, DEMO) lands and onboards; "
        f"{DEMO_RISK_OFFICER} (risk-officer, DEMO) decides; keys in {developer.key_file.parent}"
    )
    with session_scope(engine) as session:
        for name in DEMO_MODELS:
            spec = load_spec(project / "models" / f"{name}.yaml")
            ledger.register_spec(
                session=session, spec=spec, source=f"models/{name}.yaml", actor=DEMO_DEVELOPER
            )
    console.print(f"onboarded by {DEMO_DEVELOPER}: {', '.join(DEMO_MODELS)}")

    data_dir = settings.home_dir / "demo"
    data_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    files: list[tuple[str, Path, str]] = []
    for i, (name, (family, rows, fmt)) in enumerate(DEMO_MODELS.items()):
        path = data_dir / f"{name}-{stamp}.{fmt}"
        report = generate(family, rows, seed=int(stamp[-6:]) + i, out_path=path, progress=False)
        files.append((name, path, f"{report.rows:,} synthetic rows"))
    broken = data_dir / f"credit-scoring-broken-{stamp}.csv"
    files.append(("credit-scoring", broken, make_broken_file(files[0][1], broken)))
    console.print(f"generated {len(files)} files in {data_dir}")

    landings = []
    for model, path, note in files:
        landed = land_file(settings, path, model, landed_by=DEMO_DEVELOPER)
        landings.append(DemoLanding(model, path, landed.sha256, dt.datetime.now(dt.UTC), note))
        console.print(f"  landed {path.name} → {landed.uri}")

    table = Table(
        "model", "file", "verdict", "rows", "dataset version / reasons", title="contract checks"
    )
    started = time.monotonic()
    with console.status("waiting for the triggered contract-check runs…"):
        verdicts = {
            d.sha256: wait_for_check(settings, d.model, d.sha256, timeout=600) for d in landings
        }
    for d in landings:
        row = verdicts[d.sha256]
        if row.status == "accepted":
            with session_scope(engine) as session:
                version = session.get(DatasetVersion, row.dataset_version_id)
            detail, rows = row.dataset_version_id or "", f"{version.row_count:,}" if version else ""
            verdict = "[green]accepted[/]"
        else:
            detail = "\n".join(_short_reason(r) for r in (row.reasons or []))
            rows, verdict = "", "[red]rejected[/]"
        table.add_row(d.model, d.path.name, verdict, rows, detail)
    console.print(table)
    console.print(f"all verdicts in after {time.monotonic() - started:.1f}s")
    _print_runs(settings, landings, console)
    accepted = {
        d.model: verdicts[d.sha256].dataset_version_id
        for d in landings
        if verdicts[d.sha256].status == "accepted"
    }
    versions = _print_versions(settings, engine, accepted, console)
    _govern(settings, engine, versions, console)
    _print_cards(settings, platform, console)
    with session_scope(engine) as session:
        champions = {m.model: m.version for m in session.exec(select(PromotionRecord)).all()}
    score_traffic(settings, champions, console)
    close_the_loop(settings, platform, champions, console)
    _print_costs(engine, console)
    platform.close()
    console.rule()
    console.print(
        f"Prefect UI  {summary['prefect_ui']}  (deployment contract-check: runs, artifacts, events)"
    )
    console.print(f"MLflow UI   {summary['mlflow_ui']}")
    console.print(
        f"scoring     {summary['scoring']}  (OpenAPI at /openapi.json, metrics at /metrics)"
    )
    console.print(f"quarantine  {settings.lake_root / 'quarantine'}")
    console.print("The stack keeps running; stop it with: .venv/bin/riskops down")


def _print_versions(
    settings: Settings, engine: Engine, accepted: dict[str, str | None], console: Console
) -> dict[str, str]:
    """Wait for the event chain (features built → trained → registered) for each accepted file."""
    from riskops.stack.processes import wait_until

    found: dict[str, ModelVersionRecord] = {}

    def registered() -> bool:
        with session_scope(engine) as session:
            for model, dataset_id in accepted.items():
                for mv in catalog.list_model_versions(session=session, model=model):
                    if mv.dataset_version_id == dataset_id:
                        found[model] = mv
        return len(found) == len(accepted)

    started = time.monotonic()
    with console.status("waiting for feature builds (Spark) and training (LightGBM, MLflow)…"):
        complete = wait_until(registered, timeout=900, interval=2.0)
    table = Table(
        "model", "version", "AUC", "KS", "PR-AUC", "feature set", title="registered versions"
    )
    for model in accepted:
        mv = found.get(model)
        if mv is None:
            table.add_row(model, "[red]not registered[/]", "", "", "", "")
            continue
        m = mv.metrics
        table.add_row(
            model, mv.version, f"{m.get('holdout_auc', 0):.3f}", f"{m.get('holdout_ks', 0):.3f}",
            f"{m.get('holdout_pr_auc', 0):.3f}", mv.feature_set_id or "",
        )  # fmt: skip
    console.print(table)
    state = "all registered" if complete else "[red]timed out[/] (see the Prefect UI)"
    console.print(f"{state} {time.monotonic() - started:.1f}s after the contract checks")
    return {model: mv.version for model, mv in found.items()}


def _decide(settings: Settings, who: str, model: str, version: str, justification: str) -> str:
    """Approve through the governance API with ``who``'s key; what the API answered, in words."""
    import httpx

    key = key_file(settings, who).read_text().strip()
    response = httpx.post(
        f"{settings.governance.resolved_url()}/api/v1/models/{model}/versions/{version}/decision",
        json={"decision": "approve", "justification": justification},
        headers={"Authorization": f"Bearer {key}"},
        timeout=300,
    )
    body = response.json()
    if response.status_code == 200:
        return f"[green]approved[/] as {body['approver']} ({body['approver_role']})"
    return f"[yellow]refused ({response.status_code})[/]: {body.get('error')}"


def _typed_resume(settings: Settings, engine: Engine, model: str, version: str) -> str:
    """What happens when someone presses Resume in the Prefect UI and types a name."""
    from riskops.governance import remote
    from riskops.governance.signoff import request_of
    from riskops.stack.processes import wait_until

    def paused() -> str | None:
        with session_scope(engine) as session:
            request = request_of(session=session, model=model, version=version)
        if request is None:
            return None
        with local.prefect_api(settings):
            state = remote.flow_run_state(request.flow_run_id)
        return request.flow_run_id if state == "Paused" else None

    if not wait_until(lambda: paused() is not None, 300, 1):
        return "[red]no paused sign-off run[/]"
    run_id = paused()
    assert run_id is not None
    with local.prefect_api(settings):
        remote.resume_signoff(
            run_id,
            {"approver": DEMO_RISK_OFFICER, "decision": "approve",
             "justification": "typed into the Prefect UI form"},
        )  # fmt: skip
    refused: list[SignOffRecord] = []

    def recorded() -> bool:
        with session_scope(engine) as session:
            refused[:] = session.exec(
                select(SignOffRecord).where(
                    SignOffRecord.model == model,
                    SignOffRecord.version == version,
                    SignOffRecord.channel == "prefect-ui",
                )
            ).all()
        return bool(refused)

    wait_until(recorded, 120, 1)
    return f"[yellow]refused[/]: {refused[0].refusal}" if refused else "[red]nothing recorded[/]"


def _govern(settings: Settings, engine: Engine, versions: dict[str, str], console: Console) -> None:
    """Validation verdicts, then the authenticated sign-off (after refused attempts)."""
    from riskops.stack.processes import wait_until

    verdicts: dict[str, ValidationRecord] = {}

    def validated() -> bool:
        with session_scope(engine) as session:
            for model, version in versions.items():
                record = session.exec(
                    select(ValidationRecord).where(
                        ValidationRecord.model == model, ValidationRecord.version == version
                    )
                ).first()
                if record is not None:
                    verdicts[model] = record
        return len(verdicts) == len(versions)

    with console.status("waiting for the validation gates…"):
        wait_until(validated, timeout=600, interval=2.0)
    table = Table("model", "version", "verdict", "failed gates", title="validation")
    for model, version in versions.items():
        record = verdicts.get(model)
        verdict = (
            "?" if record is None else ("[green]passed[/]" if record.passed else "[red]rejected[/]")
        )
        table.add_row(model, version, verdict, ", ".join(record.failed_gates) if record else "")
    console.print(table)

    for model, record in verdicts.items():
        if not record.passed:
            continue
        version = versions[model]
        if _is_high(engine, model):
            shown = _decide(settings, DEMO_DEVELOPER, model, version, "I built it; it is fine.")
            console.print(f"  {model} v{version}: self-approval by {DEMO_DEVELOPER}: {shown}")
            shown = _typed_resume(settings, engine, model, version)
            console.print(f"  {model} v{version}: Prefect UI Resume with a typed name: {shown}")
        shown = _decide(
            settings, DEMO_RISK_OFFICER, model, version,
            "DEMO approval: every gate passed on synthetic data",
        )  # fmt: skip
        console.print(f"  {model} v{version}: sign-off by {DEMO_RISK_OFFICER}: {shown}")

    def promoted() -> bool:
        with session_scope(engine) as session:
            done = {p.model for p in session.exec(select(PromotionRecord)).all()}
        return all(m in done for m, r in verdicts.items() if r.passed)

    with console.status("waiting for promotions…"):
        wait_until(promoted, timeout=300, interval=2.0)


def _print_cards(settings: Settings, platform: Platform, console: Console) -> None:
    """Write each new champion's model card under RISKOPS_HOME/cards and say where."""
    from riskops.stages.cards import write_card

    with session_scope(platform.engine) as session:
        moves = list(session.exec(select(PromotionRecord)).all())
    engine, client = platform.engine, platform.mlflow
    table = Table("model", "champion", "model card (HTML, self-contained)", title="in production")
    for move in moves:
        folder = settings.home_dir / "cards" / move.model / f"v{move.version}"
        files = write_card(
            engine=engine, client=client, model=move.model, version=move.version,
            out_dir=folder, log_to_mlflow=False,
        )  # fmt: skip
        table.add_row(move.model, f"v{move.version}", str(files.html))
    console.print(table)
    console.print(
        "cards also as .md/.json beside the HTML, and logged to each version's MLflow run; "
        "regulator zip: .venv/bin/riskops audit export MODEL VERSION"
    )


def _is_high(engine: Engine, model: str) -> bool:
    with session_scope(engine) as session:
        return ledger.current_spec(session=session, name=model).risk_class == "high"


def _short_reason(reason: dict[str, object]) -> str:
    """`code column (rows 4, 8 …)`: the whole message is in reasons.json and the artifact."""
    rows = list(reason.get("rows") or [])  # type: ignore[call-overload]
    where = f" {reason['column']}" if reason.get("column") else ""
    listed = (
        f" (rows {', '.join(map(str, rows[:3]))}{' …' if len(rows) > 3 else ''})" if rows else ""
    )
    return f"{reason['code']}{where}{listed}"


def _print_runs(settings: Settings, landings: list[DemoLanding], console: Console) -> None:
    from riskops.stack.processes import wait_until
    from riskops.stack.runs import deployment_runs

    wanted = {d.sha256 for d in landings}
    runs: dict[object, RunInfo] = {}

    def finished() -> bool:
        with local.prefect_api(settings):
            runs.update({r.parameters.get("sha256"): r for r in deployment_runs("contract-check")})
        return all(sha in runs and runs[sha].ended is not None for sha in wanted)

    wait_until(finished, timeout=60, interval=1.0)
    table = Table(
        "flow run", "state", "file", "landed → run started", title="triggered runs (Prefect)"
    )
    for d in landings:
        run = runs.get(d.sha256)
        if run is None:
            table.add_row("(not found)", "", d.path.name, "")
            continue
        latency = f"{(run.started - d.landed_at).total_seconds():.1f}s" if run.started else ""
        table.add_row(run.name, run.state, d.path.name, latency)
    console.print(table)


def _print_costs(engine: Engine, console: Console) -> None:
    """What the demo's flow runs used and cost (``riskops cost report``)."""
    from riskops.cost.report import cost_report

    lines = cost_report(engine)
    title = "Cost per model and stage (riskops cost report; example price table)"
    table = Table("model", "stage", "runs", "CPU-s", "wall-s", "peak MiB", "rows", "cost",
                  title=title)  # fmt: skip
    for line in lines:
        table.add_row(
            line.model, line.stage, str(line.runs), f"{line.cpu_seconds:.1f}",
            f"{line.wall_seconds:.1f}", f"{line.max_peak_rss_mib:.0f}",
            "—" if line.runs_without_rows == line.runs else f"{line.rows:,}",
            f"{line.cost:.6f} {line.currency}",
        )  # fmt: skip
    console.print(table)
