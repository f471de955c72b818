"""Offline checks of Kubernetes manifests: schema validation and the hardening rules.

No API server runs here, so manifests are checked against the Kubernetes JSON schemas shipped
by kubernetes-validate (strict: unknown fields are errors) and, for the one custom resource we
ship (the Prometheus Operator's ServiceMonitor), against the schema of its CRD vendored in
``infra/k8s/schemas/``.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate

KUBERNETES_VERSION = "1.31"  # oldest minor still supported by EKS and AKS standard support
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor-monitoring.coreos.com-v1.json",
}
_POD_TEMPLATE_PATHS = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
}
_HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")
_SECCOMP_OK = {"RuntimeDefault", "Localhost"}


class ManifestError(ValueError):
    """A manifest failed a check; the message names the resource and the field."""


def resource_name(resource: dict[str, Any]) -> str:
    meta = resource.get("metadata", {})
    return f"{resource.get('kind')}/{meta.get('name') or meta.get('generateName', '?')}"


def _strict(schema: Any) -> Any:
    """Forbid unknown fields where a CRD schema lists its properties (as the API server prunes)."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _strict(value) for key, value in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def crd_schema(schema_dir: Path, api_version: str, kind: str) -> dict[str, Any]:
    """The strict JSON schema of a vendored custom resource definition."""
    try:
        filename = CRD_SCHEMAS[(api_version, kind)]
    except KeyError:
        raise ManifestError(
            f"no vendored schema for {kind} ({api_version}): add its CRD's openAPIV3Schema "
            f"to {schema_dir} and to riskops.kube.checks.CRD_SCHEMAS"
        ) from None
    schema = _strict(json.loads((schema_dir / filename).read_text()))
    schema["properties"]["metadata"] = {"type": "object"}  # the CRD leaves metadata to the server
    return schema


def validate_resource(
    resource: dict[str, Any],
    *,
    schema_dir: Path,
    version: str = KUBERNETES_VERSION,
    allowed_extra: dict[tuple[str, ...], set[str]] | None = None,
) -> None:
    """Validate one resource strictly; raise ManifestError naming the resource and the path.

    Args:
        resource: The manifest.
        schema_dir: Directory of vendored CRD schemas.
        version: Kubernetes minor version whose schemas apply.
        allowed_extra: Fields known to be dropped by the API server that a producer we do not
            control insists on, by the path of the object holding them (removed before checking).
    """
    name = resource_name(resource)
    key = (resource.get("apiVersion", ""), resource.get("kind", ""))
    if key in CRD_SCHEMAS:
        validator = jsonschema.Draft202012Validator(crd_schema(schema_dir, *key))
        errors = sorted(validator.iter_errors(resource), key=lambda e: list(e.path))
        if errors:
            first = errors[0]
            path = ".".join(str(p) for p in first.path)
            raise ManifestError(f"{name}: {path}: {first.message}")
        return
    checked = copy.deepcopy(resource)
    for path, fields in (allowed_extra or {}).items():
        holder = checked
        for part in path:
            holder = holder[part]
        for field in fields:
            holder.pop(field, None)
    try:
        kubernetes_validate.validate(checked, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path)
        raise ManifestError(f"{name}: {path}: {exc.message}") from None
    except kubernetes_validate.SchemaNotFoundError as exc:
        raise ManifestError(f"{name}: {exc.message}") from None


def pod_spec(resource: dict[str, Any]) -> dict[str, Any] | None:
    """The pod spec a workload runs, or None for resources that run no pods."""
    path = _POD_TEMPLATE_PATHS.get(resource.get("kind", ""))
    if path is None:
        return None
    spec: dict[str, Any] = resource
    for part in path:
        spec = spec.get(part, {})
    return spec


def hardening_violations(resource: dict[str, Any]) -> list[str]:
    """Every way a workload's containers break the hardening rules (empty when none).

    Rules, per container and init container: CPU and memory requests and limits; runs as
    non-root (runAsNonRoot true and no uid 0, from the container or the pod); read-only root
    filesystem; no privilege escalation; not privileged; all capabilities dropped and none
    added; a RuntimeDefault or Localhost seccomp profile. Per pod: no host network, PID or IPC
    namespace and no hostPath volume. Ephemeral containers count as containers.
    """
    spec = pod_spec(resource)
    if spec is None:
        return []
    name = resource_name(resource)
    pod_ctx = spec.get("securityContext") or {}
    problems = [f"{name}: shares the node's {field}" for field in _HOST_NAMESPACES
                if spec.get(field)]  # fmt: skip
    problems += [f"{name}: volume {v.get('name')!r} mounts a hostPath"
                 for v in spec.get("volumes") or [] if "hostPath" in v]  # fmt: skip
    containers = [*spec.get("initContainers", []), *spec.get("containers", []),
                  *spec.get("ephemeralContainers", [])]  # fmt: skip
    if not containers:
        problems.append(f"{name}: no containers")
    for container in containers:
        where = f"{name} container {container.get('name')!r}"
        ctx = container.get("securityContext") or {}
        resources = container.get("resources") or {}
        for kind in ("requests", "limits"):
            for unit in ("cpu", "memory"):
                if unit not in (resources.get(kind) or {}):
                    problems.append(f"{where}: no {unit} {kind[:-1]}")
        non_root = ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot"))
        uid = ctx.get("runAsUser", pod_ctx.get("runAsUser"))
        if non_root is not True or uid == 0:
            problems.append(f"{where}: may run as root (runAsNonRoot={non_root}, runAsUser={uid})")
        if ctx.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{where}: root filesystem is writable")
        if ctx.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: allowPrivilegeEscalation is not false")
        if ctx.get("privileged"):
            problems.append(f"{where}: privileged")
        if "ALL" not in ((ctx.get("capabilities") or {}).get("drop") or []):
            problems.append(f"{where}: capabilities not dropped (drop: [ALL])")
        added = (ctx.get("capabilities") or {}).get("add") or []
        if added:
            problems.append(f"{where}: capabilities added {sorted(added)}")
        seccomp = (ctx.get("seccompProfile") or pod_ctx.get("seccompProfile") or {}).get("type")
        if seccomp not in _SECCOMP_OK:
            problems.append(f"{where}: seccomp profile {seccomp!r}, want RuntimeDefault")
    return problems
