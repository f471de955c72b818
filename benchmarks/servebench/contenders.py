"""The four contenders: how each is set up and started, what it is sent, how it answers."""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .model import FEATURES, BenchModel, bench_spec
from .processes import free_port

# uvloop 0.22+ breaks MLServer 1.7.1's parallel workers at start ("There is no current event
# loop in thread 'MainThread'", SeldonIO/MLServer issue 2286, no release fixes it yet): pin 0.21.
MLSERVER_PACKAGES = ("mlserver==1.7.1", "mlserver-lightgbm==1.7.1", "uvloop==0.21.0")
STANDALONE = "riskops.serving.standalone"


def _compact(document: Any) -> str:
    return json.dumps(document, separators=(",", ":"))


@dataclass(frozen=True)
class Target:
    """One measured endpoint: where to POST, what, and where the score is in the answer."""

    key: str
    label: str
    path: str
    bodies: list[str]
    headers: dict[str, str]
    scores: Callable[[Any], list[float]] | None  # None: find the score anywhere in the answer


@dataclass(frozen=True)
class Contender:
    """A server to start, its readiness URL path, and the endpoints to measure on it."""

    key: str
    label: str
    command: list[str]
    env: dict[str, str]
    cwd: Path
    port: int
    ready_path: str
    targets: list[Target]
    notes: list[str] = field(default_factory=list)
    ready_timeout: float = 180.0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


class Unavailable(Exception):
    """A contender that cannot run on this machine; the message says why and what to do."""


def base_env(src: Path, omp_threads: int) -> dict[str, str]:
    """The environment of a server: riskops' source tree ``src`` first on the path, OpenMP threads.

    ``omp_threads`` > 0 sets OMP_NUM_THREADS, the threads LightGBM's predict uses when the caller
    does not pass ``num_threads`` (mlflow and MLServer do not); 0 leaves the library default.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLSERVER_", "MLFLOW_"))}
    env.pop("OMP_NUM_THREADS", None)
    if omp_threads > 0:
        env["OMP_NUM_THREADS"] = str(omp_threads)
    env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")]).strip(os.pathsep)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def _json_headers() -> dict[str, str]:
    return {"Content-Type": "application/json"}


def _records_bodies(model: BenchModel) -> list[str]:
    return [_compact({"dataframe_records": [record]}) for record in model.records]


def floor(work: Path, model: BenchModel, src: Path, omp_threads: int) -> Contender:
    """A minimal Starlette endpoint around ``booster.predict`` (benchmarks/servebench/floor.py)."""
    booster_file = work / "booster.txt"
    model.booster.save_model(str(booster_file))
    port = free_port()
    script = Path(__file__).with_name("floor.py")
    target = Target(
        key="floor",
        label="bare floor (Starlette + booster.predict)",
        path="/invocations",
        bodies=_records_bodies(model),
        headers=_json_headers(),
        scores=lambda answer: answer["predictions"],
    )
    return Contender(
        key="floor",
        label="bare floor",
        command=[sys.executable, str(script), "--booster", str(booster_file), "--port", str(port)],
        env=base_env(src, omp_threads),
        cwd=work,
        port=port,
        ready_path="/health",
        targets=[target],
        notes=["uvicorn, 1 worker, uvloop + httptools, orjson, no access log"],
    )


def mlflow_serve(work: Path, model: BenchModel, src: Path, omp_threads: int) -> Contender:
    """``mlflow models serve --env-manager local`` on the booster saved by mlflow.lightgbm."""
    import mlflow.lightgbm
    import pandas as pd
    from mlflow.models import infer_signature

    folder = work / "mlflow-model"
    if folder.exists():
        shutil.rmtree(folder)
    sample = pd.DataFrame(model.rows[:50], columns=FEATURES)
    signature = infer_signature(sample, model.booster.predict(sample.to_numpy()))
    mlflow.lightgbm.save_model(model.booster, str(folder), signature=signature)
    port = free_port()
    serve = ["-m", "mlflow", "models", "serve", "-m", str(folder), "--env-manager", "local"]
    target = Target(
        key="mlflow",
        label="mlflow models serve",
        path="/invocations",
        bodies=[
            _compact({"dataframe_split": {"columns": FEATURES, "data": [row.tolist()]}})
            for row in model.rows
        ],
        headers=_json_headers(),
        scores=lambda answer: answer["predictions"],
    )
    return Contender(
        key="mlflow",
        label="mlflow models serve",
        command=[sys.executable, *serve, "--host", "127.0.0.1", "--port", str(port)],
        env={**base_env(src, omp_threads), "MLFLOW_TRACKING_URI": (work / "mlruns").as_uri()},
        cwd=work,
        port=port,
        ready_path="/health",
        targets=[target],
        notes=["as shipped: uvicorn with 1 worker (MLflow's default), signature enforced"],
    )


def ensure_mlserver_venv(venv: Path) -> Path:
    """MLServer's own virtualenv (created once, reused while its stamp matches); its binary."""
    stamp = venv / ".riskops-bench-packages"
    binary = venv / "bin" / "mlserver"
    wanted = " ".join(MLSERVER_PACKAGES)
    if binary.exists() and stamp.exists() and stamp.read_text().strip() == wanted:
        return binary
    python = shutil.which("python3.11")
    if python is None:
        raise Unavailable("python3.11 not found: MLServer 1.7.1 needs its own Python 3.11 venv")
    print(f"  · creating MLServer's virtualenv in {venv} (once; about a minute)", flush=True)
    steps = [
        [python, "-m", "venv", "--clear", str(venv)],
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *MLSERVER_PACKAGES,
        ],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            raise Unavailable(f"`{' '.join(step)}` failed:\n{done.stderr[-3000:]}")
    stamp.write_text(wanted + "\n")
    return binary


def mlserver(
    work: Path, model: BenchModel, src: Path, omp_threads: int, venv: Path, workers: int
) -> Contender:
    """Seldon MLServer 1.7.1 with mlserver-lightgbm, V2 requests as MLServer's client sends them."""
    binary = ensure_mlserver_venv(venv)
    repo = work / "mlserver"
    (repo / "bench").mkdir(parents=True, exist_ok=True)
    model.booster.save_model(str(repo / "bench" / "booster.txt"))
    port, grpc_port, metrics_port = free_port(), free_port(), free_port()
    settings = {
        "debug": False,  # True (the default) logs every request; production runs without it
        "host": "127.0.0.1",
        "http_port": port,
        "grpc_port": grpc_port,
        "metrics_port": metrics_port,
        "parallel_workers": workers,
    }
    model_settings = {
        "name": "bench",
        "implementation": "mlserver_lightgbm.LightGBMModel",
        "parameters": {"uri": "./booster.txt", "version": "v1"},
    }
    (repo / "settings.json").write_text(json.dumps(settings, indent=1))
    (repo / "bench" / "model-settings.json").write_text(json.dumps(model_settings, indent=1))
    # a V2 request as MLServer's client sends it: one FP64 tensor named input-0, shape [1, 30]
    tensor = {"name": "input-0", "shape": [1, len(FEATURES)], "datatype": "FP64"}
    target = Target(
        key="mlserver",
        label="Seldon MLServer (lightgbm runtime)",
        path="/v2/models/bench/infer",
        bodies=[_compact({"inputs": [{**tensor, "data": row.tolist()}]}) for row in model.rows],
        headers=_json_headers(),
        scores=lambda answer: answer["outputs"][0]["data"],
    )
    env = {k: v for k, v in base_env(src, omp_threads).items() if k != "PYTHONPATH"}
    env["PATH"] = os.pathsep.join([str(venv / "bin"), os.environ.get("PATH", "")])
    workers_note = (
        "parallel_workers=0: inference in the server's own event loop"
        if workers == 0
        else f"parallel_workers={workers}: inference in {workers} worker process(es) over IPC"
    )
    return Contender(
        key="mlserver",
        label="Seldon MLServer",
        command=[str(binary), "start", str(repo)],
        env=env,
        cwd=repo,
        port=port,
        ready_path="/v2/models/bench/ready",
        targets=[target],
        notes=[
            workers_note,
            "debug=false (no per-request access log), metrics and gzip as shipped",
        ],
    )


def riskops_available() -> bool:
    """Whether ``riskops.serving.standalone`` can be imported from this checkout."""
    try:
        return importlib.util.find_spec(STANDALONE) is not None
    except ModuleNotFoundError:
        return False


def riskops(work: Path, model: BenchModel, src: Path, omp_threads: int) -> Contender:
    """Our service, standalone (no registry): score, explained and score-only paths."""
    if not riskops_available():
        raise Unavailable(f"{STANDALONE} missing")
    from riskops.specs import parse_spec
    from riskops.training.scorers import LightGBMScorer

    model_dir = work / "riskops-model"
    LightGBMScorer(model.booster, FEATURES, [], {}).save(model_dir)
    spec = bench_spec(model)
    parse_spec(spec, "bench spec")  # refuse a spec riskops would refuse, before starting
    spec_file = work / "bench.yaml"
    spec_file.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    key = "rk_" + secrets.token_urlsafe(32)
    port = free_port()
    headers = {**_json_headers(), "Authorization": f"Bearer {key}"}
    records = [_compact(record) for record in model.records]
    targets = [
        Target(key, label, path, bodies, headers, scores=None)
        for key, label, path, bodies in (
            ("riskops-score", "riskops score path", "/v1/models/bench/score", records),
            ("riskops-explain", "riskops explained path", "/v1/models/bench/score?explain=true",
             records),
            ("riskops-score-only", "riskops score-only path", "/v1/models/bench/invocations",
             _records_bodies(model)),
        )
    ]  # fmt: skip
    home = work / "riskops-home"
    serve = ["-m", STANDALONE, "--model-dir", str(model_dir), "--spec", str(spec_file)]
    return Contender(
        key="riskops",
        label="riskops",
        command=[sys.executable, *serve, "--port", str(port), "--home", str(home)],
        env={**base_env(src, omp_threads), "RISKOPS_BENCH_KEY": key},
        cwd=work,
        port=port,
        ready_path="/health/ready",
        targets=targets,
        notes=["standalone service (no registry), decision logging on, key in RISKOPS_BENCH_KEY"],
    )
