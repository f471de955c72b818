"""The production target: prefect.yaml's deployments on the ``riskops-kubernetes`` pool.

Prefect 3 has no deployment targets, so the production target is a second prefect file,
``deployments/prefect.production.yaml``, generated from ``prefect.yaml`` (names, entrypoints,
parameters, triggers and schedules stay in one place) plus the job variables below. Deploy it
with ``prefect --no-prompt deploy --all --prefect-file deployments/prefect.production.yaml``.
"""

from __future__ import annotations

import copy
from typing import Any

from riskops.kube.work_pool import FLOWS_IMAGE, GPU_RESOURCE, POOL_NAME

PROJECT_DIR_IN_IMAGE = "/opt/riskops"  # the flows image holds the checkout here

# Spot capacity: AKS taints spot pools with the first key by itself; EKS managed node groups
# and Karpenter label spot nodes but do not taint them, so on EKS add the second taint to the
# spot node group (docs/kubernetes.md). Tolerating a taint no node has is harmless.
SPOT_TOLERATIONS = [
    {
        "key": "kubernetes.azure.com/scalesetpriority",
        "operator": "Equal",
        "value": "spot",
        "effect": "NoSchedule",
    },
    {"key": "eks.amazonaws.com/capacityType", "operator": "Equal", "value": "SPOT",
     "effect": "NoSchedule"},
]  # fmt: skip
SPOT_LABELS = {
    "eks.amazonaws.com/capacityType": "SPOT",
    "karpenter.sh/capacity-type": "spot",
    "kubernetes.azure.com/scalesetpriority": "spot",
}
SPOT_AFFINITY = {
    "nodeAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {
                "weight": 100,
                "preference": {
                    "matchExpressions": [{"key": key, "operator": "In", "values": [value]}]
                },
            }
            for key, value in SPOT_LABELS.items()
        ]
    }
}
GPU_TOLERATION = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}


def _resources(cpu: tuple[str, str], memory: tuple[str, str]) -> dict[str, str]:
    return {
        "cpu_request": cpu[0],
        "cpu_limit": cpu[1],
        "memory_request": memory[0],
        "memory_limit": memory[1],
    }


# Sizes are starting points for ~1M-row datasets; memory requests equal limits for the Spark
# stages so the scheduler reserves what the driver may use.
PROFILES: dict[str, dict[str, Any]] = {
    # Governance and bookkeeping: a Python process, a few API calls.
    "control": _resources(("250m", "1"), ("512Mi", "1Gi")),
    # Reads one landed file with pandas and checks the contract.
    "small": _resources(("500m", "1"), ("1Gi", "2Gi")),
    # Profiles, gates and SHAP on a holdout; on-demand nodes (no spot: short, latency matters).
    "medium": _resources(("1", "2"), ("2Gi", "4Gi")),
    # Spark in local mode inside the pod, LightGBM training: spot capacity, large memory.
    "large": {
        **_resources(("4", "8"), ("16Gi", "16Gi")),
        "tolerations": SPOT_TOLERATIONS,
        "affinity": SPOT_AFFINITY,
        "scratch_size_limit": "50Gi",
        # Spark's driver memory comes from the riskops-platform block (spark_driver_memory,
        # saved by `python -m blocks.register` from RISKOPS_SPARK_DRIVER_MEMORY), not from the
        # pod: register it as 12g so driver + Python workers fit the 16Gi limit.
    },
}

DEPLOYMENT_PROFILES: dict[str, str] = {
    "contract-check": "small",
    "feature-build": "large",
    "train": "large",
    "validate": "medium",
    "risk-sign-off": "control",
    "promote": "control",
    "batch-score": "large",
    "reconcile": "control",
    "monitor": "medium",
    "performance": "medium",
    "retrain-gate": "control",
    "retrain": "large",
    "sla-breach": "control",
}

# risk-sign-off pauses (the pod stays up) for up to its 72 h timeout_hours: let the Job live longer.
DEADLINES: dict[str, int] = {"risk-sign-off": 75 * 3600}

# A flow run of `train` or `retrain` asks for a GPU with these job variables, e.g.
# `prefect deployment run train/train --job-variable gpu_limit=1 --job-variable tolerations=...`.
GPU_RUN_VARIABLES: dict[str, Any] = {
    "gpu_limit": 1,
    "tolerations": [*SPOT_TOLERATIONS, GPU_TOLERATION],
}


def _cpu_cores(quantity: str) -> float:
    """A Kubernetes CPU quantity ("250m", "4") in cores."""
    return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def _memory_gib(quantity: str) -> float:
    """A Kubernetes memory quantity ("512Mi", "16Gi") in GiB."""
    units = {"Mi": 1 / 1024, "Gi": 1.0, "Ti": 1024.0}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return float(quantity[: -len(suffix)]) * factor
    raise ValueError(f"memory quantity {quantity!r}: write it in Mi, Gi or Ti")


def job_variables(deployment: str, *, image: str) -> dict[str, Any]:
    """The production job variables of one deployment (KeyError names an unknown one)."""
    try:
        profile = DEPLOYMENT_PROFILES[deployment]
    except KeyError:
        raise KeyError(
            f"deployment {deployment!r} of prefect.yaml has no production profile: add it to "
            "riskops.kube.production.DEPLOYMENT_PROFILES and regenerate the production target "
            "(python -m deployments.production)"
        ) from None
    variables = {"image": image, **copy.deepcopy(PROFILES[profile])}
    env = variables.setdefault("env", {})
    env["RISKOPS_PROJECT_DIR"] = PROJECT_DIR_IN_IMAGE
    # A pod is charged for what it reserves: the cost meter prices at least the requests.
    env["RISKOPS_COST_REQUESTED_VCPUS"] = str(_cpu_cores(variables["cpu_request"]))
    env["RISKOPS_COST_REQUESTED_MEMORY_GIB"] = str(_memory_gib(variables["memory_request"]))
    if deployment in DEADLINES:
        variables["active_deadline_seconds"] = DEADLINES[deployment]
    return variables


def production_target(prefect_yaml: dict[str, Any], *, version: str) -> dict[str, Any]:
    """prefect.yaml's deployments moved to the Kubernetes pool with production job variables.

    Args:
        prefect_yaml: The parsed ``prefect.yaml``.
        version: The release; the flows image is ``ghcr.io/riskops/riskops-flows:<version>``.
    """
    image = f"{FLOWS_IMAGE}:{version}"
    target = {
        "name": prefect_yaml["name"],
        "prefect-version": prefect_yaml["prefect-version"],
        "build": None,
        "push": None,
        # The image holds the checkout; prefect.yaml's pull step points at the local one.
        "pull": [
            {"prefect.deployments.steps.set_working_directory": {"directory": PROJECT_DIR_IN_IMAGE}}
        ],
        "deployments": [],
    }
    for source in prefect_yaml["deployments"]:
        deployment = copy.deepcopy(source)
        deployment["work_pool"] = {
            "name": POOL_NAME,
            "job_variables": job_variables(source["name"], image=image),
        }
        target["deployments"].append(deployment)
    return target
