"""The `kubernetes` work pool's base job template, built on prefect-kubernetes' own default.

prefect-kubernetes 0.8.0 already templates image, namespace, service account and CPU/memory
requests and limits. riskops adds node selector, tolerations, affinity, an optional
``nvidia.com/gpu`` limit, a scratch volume, and a hardened security context (non-root, read-only
root filesystem, no privilege escalation, no capabilities, RuntimeDefault seccomp): flow runs
get the same hardening as the long-running services in ``infra/k8s/``.
"""

from __future__ import annotations

import copy
from typing import Any

POOL_NAME = "riskops-kubernetes"  # deployments/prefect.production.yaml names the same pool
FLOWS_IMAGE = "ghcr.io/riskops/riskops-flows"
NAMESPACE = "riskops"
SERVICE_ACCOUNT = "riskops-flows"  # infra/k8s/base/rbac.yaml creates it (IRSA / workload id)
RUN_AS_USER = 10001  # the images' non-root user; the flows image must run as this uid
RISKOPS_HOME = "/var/lib/riskops"  # writable emptyDir: the root filesystem is read-only
SCRATCH = "/tmp"  # Spark's spark.local.dir and Python's tempfile default
GPU_RESOURCE = "nvidia.com/gpu"

_CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
}
_POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": RUN_AS_USER,
    "runAsGroup": RUN_AS_USER,
    "fsGroup": RUN_AS_USER,
    "seccompProfile": {"type": "RuntimeDefault"},
}

_EXTRA_VARIABLES: dict[str, dict[str, Any]] = {
    "node_selector": {
        "title": "Node Selector",
        "description": "Node labels the flow-run pod must match (e.g. a batch node pool).",
        "type": "object",
        "additionalProperties": {"type": "string"},
        "default": {},
    },
    "tolerations": {
        "title": "Tolerations",
        "description": "Taints the flow-run pod tolerates (spot capacity, GPU nodes).",
        "type": "array",
        "items": {"type": "object"},
        "default": [],
    },
    "affinity": {
        "title": "Affinity",
        "description": "Pod affinity rules, e.g. a preference for spot nodes.",
        "type": "object",
        "default": {},
    },
    "gpu_limit": {
        "title": "GPU Limit",
        "description": f"Number of {GPU_RESOURCE} devices; unset means no GPU is requested.",
        "anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}],
        "default": None,
    },
    "scratch_size_limit": {
        "title": "Scratch Size Limit",
        "description": f"Size limit of the emptyDir mounted at {SCRATCH} (Spark shuffle files).",
        "type": "string",
        "default": "10Gi",
    },
    "active_deadline_seconds": {
        "title": "Active Deadline Seconds",
        "description": "Kubernetes kills the Job after this many seconds.",
        "type": "integer",
        "minimum": 1,
        "default": 21600,
    },
}


def kubernetes_base_job_template(
    *,
    image: str = f"{FLOWS_IMAGE}:latest",
    namespace: str = NAMESPACE,
    service_account: str = SERVICE_ACCOUNT,
) -> dict[str, Any]:
    """The base job template of the ``riskops-kubernetes`` pool.

    Args:
        image: Default flows image (deployments override it with a pinned tag).
        namespace: Namespace the worker creates Jobs in.
        service_account: Service account of flow-run pods (carries the cloud identity).

    Returns:
        A template accepted by ``prefect work-pool create --base-job-template``.
    """
    # Imported here: `riskops up` imports this module for POOL_NAME and should not pay for
    # prefect-kubernetes (about a second) when it only makes the process pool.
    from prefect_kubernetes.worker import KubernetesWorker

    template = copy.deepcopy(KubernetesWorker.get_default_base_job_template())
    variables = template["variables"]["properties"]
    variables["image"]["default"] = image
    variables["namespace"]["default"] = namespace
    variables["service_account_name"]["default"] = service_account
    variables["finished_job_ttl"]["default"] = 86400
    # The runs' own defaults; deployments merge their env on top (prefect's `env` deep merge).
    variables["env"]["default"] = {"RISKOPS_HOME": RISKOPS_HOME, "HOME": SCRATCH}
    for name, schema in _EXTRA_VARIABLES.items():
        variables[name] = copy.deepcopy(schema)

    manifest = template["job_configuration"]["job_manifest"]
    manifest["spec"]["activeDeadlineSeconds"] = "{{ active_deadline_seconds }}"
    pod = manifest["spec"]["template"]["spec"]
    pod["nodeSelector"] = "{{ node_selector }}"
    pod["tolerations"] = "{{ tolerations }}"
    pod["affinity"] = "{{ affinity }}"
    pod["securityContext"] = copy.deepcopy(_POD_SECURITY)
    pod["automountServiceAccountToken"] = False  # flow runs never call the Kubernetes API
    pod["volumes"] = [
        {"name": "scratch", "emptyDir": {"sizeLimit": "{{ scratch_size_limit }}"}},
        {"name": "riskops-home", "emptyDir": {"sizeLimit": "1Gi"}},
    ]
    (container,) = pod["containers"]
    # A null default drops the key when the variable is unset (prefect's templating), so a run
    # asks for a GPU only when its job variables set gpu_limit.
    container["resources"]["limits"][GPU_RESOURCE] = "{{ gpu_limit }}"
    container["securityContext"] = copy.deepcopy(_CONTAINER_SECURITY)
    container["volumeMounts"] = [
        {"name": "scratch", "mountPath": SCRATCH},
        {"name": "riskops-home", "mountPath": RISKOPS_HOME},
    ]
    return template
