"""Render the Job a prefect-kubernetes worker would create for a flow run, without a cluster.

The worker (prefect_kubernetes 0.8.0, ``BaseJobConfiguration.resolve_for_flow_run``) merges the
deployment's job variables and the flow run's over the pool's base job template with
``from_template_and_values``, then calls ``prepare_for_flow_run`` (environment, labels, command,
generateName). This module runs those same two steps.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import Flow, FlowRun, WorkPool
from prefect.client.schemas.responses import DeploymentResponse
from prefect_kubernetes.worker import KubernetesWorkerJobConfiguration

# The template must not reference blocks or Prefect variables (they would need a live API); a
# client pointed at a closed port makes any such lookup fail loudly instead of passing quietly.
_OFFLINE_API = "http://127.0.0.1:9/api"


def merge_job_variables(
    deployment_vars: dict[str, Any], flow_run_vars: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Merge a flow run's job variables over its deployment's, as the worker does (env merged)."""
    merged = {**deployment_vars}
    run_vars = dict(flow_run_vars or {})
    if isinstance(merged.get("env"), dict):
        merged["env"] = {**merged["env"], **run_vars.pop("env", {})}
    merged.update(run_vars)
    return merged


async def _configuration(
    base_job_template: dict[str, Any], values: dict[str, Any]
) -> KubernetesWorkerJobConfiguration:
    client = PrefectClient(api=_OFFLINE_API)
    return await KubernetesWorkerJobConfiguration.from_template_and_values(
        base_job_template, values, client=client
    )


def render_flow_run_job(
    base_job_template: dict[str, Any],
    *,
    pool_name: str,
    deployment_name: str,
    flow_name: str,
    deployment_job_variables: dict[str, Any],
    flow_run_job_variables: dict[str, Any] | None = None,
    worker_name: str = "riskops-k8s-worker",
) -> dict[str, Any]:
    """The Job manifest the worker would submit for one new flow run of a deployment.

    Args:
        base_job_template: The work pool's base job template.
        pool_name: Name of the work pool (its label lands on the Job).
        deployment_name: The deployment's name.
        flow_name: The flow's name.
        deployment_job_variables: The deployment's ``job_variables``.
        flow_run_job_variables: Per-run overrides (``prefect deployment run --job-variable``).
        worker_name: The worker's name (a label and an environment variable).

    Returns:
        The ``batch/v1`` Job as a dict, as sent to the Kubernetes API.
    """
    flow = Flow(id=uuid.uuid4(), name=flow_name)
    pool = WorkPool(id=uuid.uuid4(), name=pool_name, type="kubernetes")
    values = merge_job_variables(deployment_job_variables, flow_run_job_variables)
    deployment = DeploymentResponse(
        id=uuid.uuid4(), name=deployment_name, flow_id=flow.id, job_variables=values
    )
    flow_run = FlowRun(
        id=uuid.uuid4(),
        name=f"{deployment_name}-run",
        flow_id=flow.id,
        deployment_id=deployment.id,
        work_pool_name=pool_name,
        job_variables=flow_run_job_variables or {},
    )
    configuration = asyncio.run(_configuration(base_job_template, values))
    configuration.prepare_for_flow_run(
        flow_run=flow_run,
        deployment=deployment,
        flow=flow,
        work_pool=pool,
        worker_name=worker_name,
        worker_id=uuid.uuid4(),
    )
    return configuration.job_manifest
