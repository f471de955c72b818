"""The production target deployed to a real Prefect server, its flow runs resolved by the worker.

Starts `prefect server start` (SQLite, a free port), creates the kubernetes pool with
`python -m deployments.work_pools --target production`, deploys
deployments/prefect.production.yaml with `prefect --no-prompt deploy --all --prefect-file`, creates
a real flow run of every deployment, and builds each Job the way the worker does
(`KubernetesWorkerJobConfiguration.resolve_for_flow_run` on the server's pool, deployment and
flow run), then validates it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.exceptions import PrefectHTTPStatusError
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect_kubernetes.worker import KubernetesWorkerJobConfiguration

from riskops.kube.checks import hardening_violations, validate_resource
from riskops.kube.production import GPU_RUN_VARIABLES
from riskops.kube.work_pool import GPU_RESOURCE, POOL_NAME, kubernetes_base_job_template
from riskops.stack import processes
from riskops.stack.ports import free_port
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

PRODUCTION = ROOT / "deployments" / "prefect.production.yaml"
TARGET = yaml.safe_load(PRODUCTION.read_text())
UPSTREAM_EXTRA = {("spec", "template", "spec"): {"parallelism", "completions"}}
SCHEMAS = ROOT / "infra" / "k8s" / "schemas"


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    home = tmp_path_factory.mktemp("k8s-deploy")
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home / "prefect"),
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_CLI_PROMPT": "false",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
    }
    spec = processes.ProcessSpec(
        name="prefect-server",
        argv=[sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
              "--port", str(port)],
        env=env, cwd=ROOT, run_dir=home / "run", log_dir=home / "logs",
    )  # fmt: skip
    processes.start(spec)
    api = f"http://127.0.0.1:{port}/api"

    def healthy() -> bool:
        try:
            return httpx.get(f"{api}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        assert processes.wait_until(healthy, 90), processes.tail(spec.log_file)
        yield {**env, "PREFECT_API_URL": api}
    finally:
        processes.stop(spec.pid_file)


def _run(env: dict[str, str], *argv: str) -> str:
    result = subprocess.run(
        [sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"{argv}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def deployed(prefect_api: dict[str, str]) -> dict[str, str]:
    assert "riskops-process: created" in _run(prefect_api, "-m", "deployments.work_pools")
    assert "created" in _run(prefect_api, "-m", "deployments.work_pools", "--target", "production")
    assert "template updated" in _run(
        prefect_api, "-m", "deployments.work_pools", "--target", "production"
    )
    _run(prefect_api, "-m", "prefect", "--no-prompt", "deploy", "--all",
         "--prefect-file", str(PRODUCTION.relative_to(ROOT)))  # fmt: skip
    return prefect_api


def _parameters(schema: dict[str, Any]) -> dict[str, Any]:
    samples = {"string": "x", "integer": 1, "number": 1.0, "boolean": False, "object": {},
               "array": []}  # fmt: skip
    props = schema.get("properties", {})
    return {name: samples[props[name].get("type", "string")] for name in schema.get("required", [])}


async def _resolve_all(api: str) -> dict[str, dict[str, Any]]:
    jobs = {}
    with temporary_settings(updates={PREFECT_API_URL: api}):
        async with get_client() as client:
            local_pool = await client.read_work_pool("riskops-process")  # riskops up's pool
            assert local_pool.type == "process"
            pool = await client.read_work_pool(POOL_NAME)
            assert pool.type == "kubernetes"
            assert pool.base_job_template == kubernetes_base_job_template()
            deployed = {d.name: d for d in await client.read_deployments()}
            assert set(deployed) == {d["name"] for d in TARGET["deployments"]}
            for entry in TARGET["deployments"]:
                name = entry["name"]
                deployment = deployed[name]
                assert deployment.work_pool_name == POOL_NAME
                assert deployment.job_variables == entry["work_pool"]["job_variables"]
                params = _parameters(deployment.parameter_openapi_schema)
                runs = [("", {})]
                if name == "train":
                    runs.append(("+gpu", GPU_RUN_VARIABLES))
                for suffix, job_variables in runs:
                    flow_run = await client.create_flow_run_from_deployment(
                        deployment.id, parameters=params, job_variables=job_variables
                    )
                    config = await KubernetesWorkerJobConfiguration.resolve_for_flow_run(
                        flow_run, client=client, work_pool=pool, worker_name="riskops-k8s-worker"
                    )
                    jobs[name + suffix] = config.job_manifest
            # The server checks a run's job variables against the pool's schema.
            train = deployed["train"]
            with pytest.raises(PrefectHTTPStatusError, match="gpu_limit"):
                await client.create_flow_run_from_deployment(
                    train.id,
                    parameters=_parameters(train.parameter_openapi_schema),
                    job_variables={"gpu_limit": "lots"},
                )
    return jobs


def test_every_deployed_flow_run_resolves_to_a_valid_hardened_job(deployed):
    jobs = asyncio.run(_resolve_all(deployed["PREFECT_API_URL"]))
    assert set(jobs) == {d["name"] for d in TARGET["deployments"]} | {"train+gpu"}
    for name, job in jobs.items():
        validate_resource(job, schema_dir=SCHEMAS, allowed_extra=UPSTREAM_EXTRA)
        assert hardening_violations(job) == [], name
        (container,) = job["spec"]["template"]["spec"]["containers"]
        variables = {d["name"]: d for d in TARGET["deployments"]}[name.removesuffix("+gpu")][
            "work_pool"
        ]["job_variables"]
        assert container["image"] == variables["image"]
        assert container["resources"]["limits"]["memory"] == variables["memory_limit"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["PREFECT_API_URL"] == deployed["PREFECT_API_URL"]
        assert (GPU_RESOURCE in container["resources"]["limits"]) == name.endswith("+gpu")
