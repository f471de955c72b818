"""infra/k8s/ and infra/helm/: every overlay rendered, every resource validated and hardened.

No API server runs here: overlays are rendered with `kubectl kustomize`, each resource is
validated strictly against the Kubernetes 1.31 schemas (kubernetes-validate) or, for the
ServiceMonitor, against the Prometheus Operator CRD's schema vendored in infra/k8s/schemas/.
The Helm values are validated against the charts' own values.schema.json, vendored.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic_settings import BaseSettings

from riskops import settings as settings_module
from riskops.kube import kustomize
from riskops.kube.checks import (
    ManifestError,
    hardening_violations,
    pod_spec,
    resource_name,
    validate_resource,
)
from riskops.kube.production import PROJECT_DIR_IN_IMAGE
from riskops.kube.work_pool import POOL_NAME, kubernetes_base_job_template
from riskops.monitoring.slack import SlackSettings
from riskops.webhooks.settings import WebhookSettings
from tests.conftest import ROOT

K8S = ROOT / "infra" / "k8s"
HELM = ROOT / "infra" / "helm"
SCHEMAS = K8S / "schemas"
OVERLAYS = sorted(p.parent.name for p in (K8S / "overlays").glob("*/kustomization.yaml"))
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
OUR_IMAGES = ("ghcr.io/riskops/riskops-scoring", "ghcr.io/riskops/riskops-flows")

if kustomize.kubectl() is None:
    if os.environ.get("CI") == "true":
        raise RuntimeError(
            "kubectl is missing on CI: the manifests cannot be rendered (kubectl with kustomize "
            "v5 ships on this machine kind; Debian's kubernetes-client 1.20 is too old)"
        )
    pytest.skip("kubectl is not installed (CI fails instead of skipping)", allow_module_level=True)

RENDERED = {name: kustomize.render(K8S / "overlays" / name) for name in OVERLAYS}
BASE = kustomize.render(K8S / "base")


def by_kind(resources: list[dict], kind: str) -> dict[str, dict]:
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == kind}


def containers(resource: dict) -> list[dict]:
    spec = pod_spec(resource) or {}
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def test_overlays_exist():
    assert {"dev", "prod", "prod-eks", "prod-aks"} <= set(OVERLAYS)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_resource_is_valid(overlay):
    resources = RENDERED[overlay]
    assert len(resources) >= 25
    errors = []
    for resource in resources:
        try:
            validate_resource(resource, schema_dir=SCHEMAS)
        except ManifestError as error:
            errors.append(str(error))
    assert errors == []
    assert {r["kind"] for r in resources} >= {
        "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget",
        "NetworkPolicy", "ServiceMonitor", "ServiceAccount", "Role", "RoleBinding", "ConfigMap",
    }  # fmt: skip


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workload_is_hardened(overlay):
    workloads = [r for r in RENDERED[overlay] if pod_spec(r) is not None]
    assert {r["metadata"]["name"] for r in workloads} == {
        "riskops-scoring", "riskops-watcher", "riskops-webhook-bridge", "riskops-governance",
        "riskops-redis",
    }  # fmt: skip
    problems = [p for r in workloads for p in hardening_violations(r)]
    assert problems == []
    for resource in workloads:
        spec = pod_spec(resource)
        assert spec["automountServiceAccountToken"] is False, resource_name(resource)
        mounts = {m["mountPath"] for c in spec["containers"] for m in c.get("volumeMounts", [])}
        empty_dirs = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        assert empty_dirs, f"{resource_name(resource)}: no emptyDir for its writable paths"
        assert mounts, resource_name(resource)


def test_hardening_check_fails_on_a_bad_overlay(tmp_path):
    """A deliberately bad overlay (root, no limits, writable root fs) is caught after rendering."""
    bad = tmp_path / "bad"
    bad.mkdir()
    pod, main = "/spec/template/spec", "/spec/template/spec/containers/0"
    operations = [
        {"op": "remove", "path": f"{main}/resources/limits"},
        {"op": "replace", "path": f"{pod}/securityContext/runAsUser", "value": 0},
        {"op": "replace", "path": f"{pod}/securityContext/runAsNonRoot", "value": False},
        {"op": "remove", "path": f"{main}/securityContext/runAsNonRoot"},
        {"op": "replace", "path": f"{main}/securityContext/readOnlyRootFilesystem", "value": False},
    ]
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(K8S / "base", bad)],
        "patches": [
            {
                "target": {"kind": "Deployment", "name": "riskops-scoring"},
                "patch": yaml.safe_dump(operations),
            }
        ],
    }
    (bad / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    rendered = by_kind(kustomize.render(bad), "Deployment")
    problems = hardening_violations(rendered["riskops-scoring"])
    where = "Deployment/riskops-scoring container 'scoring'"
    assert f"{where}: no cpu limit" in problems
    assert f"{where}: no memory limit" in problems
    assert any(p.startswith(f"{where}: may run as root") for p in problems)
    assert f"{where}: root filesystem is writable" in problems
    assert hardening_violations(rendered["riskops-watcher"]) == []  # the rest stays clean


def test_hardening_check_fails_on_a_bad_manifest():
    bad = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "bad"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "x:1",
                            "securityContext": {"privileged": True, "runAsUser": 0},
                        }
                    ]
                },
            },
        },
    }
    validate_resource(bad, schema_dir=SCHEMAS)  # schema-valid: only the hardening rules catch it
    problems = hardening_violations(bad)
    assert len(problems) == 10, (
        problems
    )  # 4 resources, root, fs, escalation, privileged, caps, seccomp
    assert "Deployment/bad container 'app': privileged" in problems
    # What a clean container can still do wrong, and the pod around it.
    (clean,) = [r for r in BASE if r["kind"] == "Deployment"
                and r["metadata"]["name"] == "riskops-scoring"]  # fmt: skip
    sneaky = json.loads(json.dumps(clean))
    pod = sneaky["spec"]["template"]["spec"]
    pod["containers"][0]["securityContext"]["capabilities"]["add"] = ["SYS_ADMIN"]
    pod["hostNetwork"] = True
    pod["volumes"] = [*pod.get("volumes", []), {"name": "docker", "hostPath": {"path": "/var"}}]
    sneaky["kind"] = "ReplicaSet"
    found = hardening_violations(sneaky)
    assert any("capabilities added ['SYS_ADMIN']" in p for p in found), found
    assert any("shares the node's hostNetwork" in p for p in found)
    assert any("volume 'docker' mounts a hostPath" in p for p in found)


def test_schema_validation_is_strict():
    (deployment,) = [
        r for r in BASE if r["metadata"]["name"] == "riskops-scoring" and r["kind"] == "Deployment"
    ]
    typo = json.loads(json.dumps(deployment))
    typo["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    with pytest.raises(ManifestError, match=r"containers\.0: Additional properties"):
        validate_resource(typo, schema_dir=SCHEMAS)
    wrong_type = json.loads(json.dumps(deployment))
    wrong_type["spec"]["replicas"] = "three"
    with pytest.raises(ManifestError, match=r"Deployment/riskops-scoring: spec\.replicas"):
        validate_resource(wrong_type, schema_dir=SCHEMAS)


def test_service_monitor_follows_the_crd_schema():
    monitors = by_kind(BASE, "ServiceMonitor")
    assert set(monitors) == {"riskops-scoring", "riskops-governance"}  # service + exporter
    for name, found in monitors.items():
        validate_resource(found, schema_dir=SCHEMAS)
        service = by_kind(BASE, "Service")[name]
        (endpoint,) = found["spec"]["endpoints"]
        assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
        assert endpoint["path"] == "/metrics" and endpoint["authorization"]["type"] == "Bearer"
        assert found["spec"]["selector"]["matchLabels"].items() <= (
            service["metadata"]["labels"].items()
        )
    monitor = monitors["riskops-scoring"]
    bad_interval = json.loads(json.dumps(monitor))
    bad_interval["spec"]["endpoints"][0]["interval"] = "15 seconds"
    with pytest.raises(ManifestError, match=r"spec\.endpoints\.0\.interval"):
        validate_resource(bad_interval, schema_dir=SCHEMAS)
    unknown = json.loads(json.dumps(monitor))
    unknown["spec"]["endpoints"][0]["bearerToken"] = "plain text"
    with pytest.raises(ManifestError, match="Additional properties"):
        validate_resource(unknown, schema_dir=SCHEMAS)
    # It scrapes the scoring Service's named port with a key (off-loopback /metrics needs one).
    service = by_kind(BASE, "Service")["riskops-scoring"]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    assert endpoint["authorization"]["type"] == "Bearer"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )


def test_scoring_probes_and_ports_follow_the_service_code():
    source = (ROOT / "src" / "riskops" / "serving" / "app.py").read_text()
    deployment = by_kind(BASE, "Deployment")["riskops-scoring"]
    (scoring,) = deployment["spec"]["template"]["spec"]["containers"]
    for probe, path in (("readinessProbe", "/health/ready"), ("livenessProbe", "/health/live")):
        assert scoring[probe]["httpGet"]["path"] == path
        assert f'Route("{path}"' in source
    assert scoring["command"] == ["python", "-m", "riskops.serving.server"]
    ports = {
        "riskops-scoring": settings_module.ScoringSettings.model_fields["port"].default,
        "riskops-governance": settings_module.GovernanceSettings.model_fields["port"].default,
        "riskops-webhook-bridge": WebhookSettings.model_fields["port"].default,
    }
    deployments = by_kind(BASE, "Deployment")
    for name, port in ports.items():
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        assert container["ports"][0]["containerPort"] == port, name
    hpa = by_kind(BASE, "HorizontalPodAutoscaler")["riskops-scoring"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "riskops-scoring"


def test_commands_are_the_processes_riskops_up_runs():
    local = (ROOT / "src" / "riskops" / "stack" / "local.py").read_text()
    deployments = by_kind(BASE, "Deployment")
    for name in (
        "riskops-scoring",
        "riskops-watcher",
        "riskops-webhook-bridge",
        "riskops-governance",
    ):
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        python, *args = container["command"]
        assert python == "python"
        assert "[py, " + ", ".join(f'"{a}"' for a in args) + "]" in local, name  # fmt: skip


def _settings_env_names() -> set[str]:
    classes = [
        c
        for c in vars(settings_module).values()
        if isinstance(c, type) and issubclass(c, BaseSettings) and c is not BaseSettings
    ]
    names = set()
    for cls in [*classes, WebhookSettings, SlackSettings]:
        prefix = cls.model_config.get("env_prefix", "")
        names |= {f"{prefix}{field}".upper() for field in cls.model_fields}
    return names


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_riskops_variable_is_a_real_setting(overlay):
    known = _settings_env_names()
    used = set()
    for resource in RENDERED[overlay]:
        if (
            resource["kind"] == "ConfigMap"
            and resource["metadata"]["name"] == "riskops-platform-env"
        ):
            used |= set(resource["data"])
        for container in containers(resource):
            used |= {e["name"] for e in container.get("env", [])}
    unknown = {n for n in used if n.startswith("RISKOPS_")} - known
    assert unknown == set()
    assert "RISKOPS_SCORING_ONLINE_STORE" in used and "RISKOPS_LAKE_BACKEND" in used


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_images_are_ours_and_tagged(overlay):
    images = {c["image"] for r in RENDERED[overlay] for c in containers(r)}
    for image in images:
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest", image
        if repository in OUR_IMAGES and overlay.startswith("prod"):
            assert tag == VERSION, f"{overlay}: {image} is not the release {VERSION}"
    assert {i.rpartition(":")[0] for i in images} >= set(OUR_IMAGES)


def test_production_target_uses_the_release_image_of_the_prod_overlay():
    target = yaml.safe_load((ROOT / "deployments" / "prefect.production.yaml").read_text())
    images = {d["work_pool"]["job_variables"]["image"] for d in target["deployments"]}
    assert images == {f"ghcr.io/riskops/riskops-flows:{VERSION}"}
    assert target["pull"][0]["prefect.deployments.steps.set_working_directory"]["directory"] == (
        PROJECT_DIR_IN_IMAGE
    )


def test_worker_rbac_is_least_privilege():
    role = by_kind(BASE, "Role")["prefect-worker"]
    rules = {(tuple(r["apiGroups"]), tuple(r["resources"])): set(r["verbs"]) for r in role["rules"]}
    assert rules == {
        (("batch",), ("jobs",)): {"create", "get", "list", "watch", "delete"},
        (("",), ("pods", "pods/log")): {"get", "list", "watch"},
        (("",), ("events",)): {"get", "list", "watch", "create"},
    }
    binding = by_kind(BASE, "RoleBinding")["prefect-worker"]
    assert binding["roleRef"]["name"] == "prefect-worker"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "prefect-worker", "namespace": "riskops"}
    ]
    assert "prefect-worker" in by_kind(BASE, "ServiceAccount")
    # Nothing else in riskops may call the Kubernetes API.
    assert len(by_kind(BASE, "Role")) == 1 and not by_kind(BASE, "ClusterRole")


def test_base_job_template_configmap_is_the_pool_template():
    configmap = by_kind(BASE, "ConfigMap")["riskops-kubernetes-base-job-template"]
    assert json.loads(configmap["data"]["baseJobTemplate.json"]) == kubernetes_base_job_template()
    flows_sa = kubernetes_base_job_template()["variables"]["properties"]["service_account_name"]
    assert flows_sa["default"] in by_kind(BASE, "ServiceAccount")


def test_network_policies_deny_by_default_and_admit_each_service():
    policies = by_kind(BASE, "NetworkPolicy")
    deny = policies["default-deny-ingress"]
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    admitted = {
        p["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name")
        for p in policies.values()
        if p["spec"].get("ingress")
    }
    for service in by_kind(BASE, "Service").values():
        assert service["spec"]["selector"]["app.kubernetes.io/name"] in admitted
    redis = policies["riskops-redis"]["spec"]["ingress"]
    assert redis == [
        {
            "from": [
                {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "riskops-scoring"}}}
            ],
            "ports": [{"port": "redis", "protocol": "TCP"}],
        }
    ]


def test_prod_eks_binds_cloud_identities_and_prod_aks_uses_the_s3_block():
    eks = by_kind(RENDERED["prod-eks"], "ServiceAccount")
    for name in ("riskops-platform", "riskops-scoring", "riskops-flows"):
        assert eks[name]["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].endswith(
            f":role/{name}"
        )
    assert "annotations" not in eks["prefect-worker"]["metadata"]
    aks_env = by_kind(RENDERED["prod-aks"], "ConfigMap")["riskops-platform-env"]["data"]
    assert aks_env["RISKOPS_LAKE_S3_BLOCK"] and aks_env["RISKOPS_LAKE_BACKEND"] == "s3"
    prod = by_kind(RENDERED["prod"], "Deployment")["riskops-scoring"]
    assert "replicas" not in prod["spec"]  # the HPA owns it
    hpa = by_kind(RENDERED["prod"], "HorizontalPodAutoscaler")["riskops-scoring"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 12)
    assert by_kind(RENDERED["prod"], "PodDisruptionBudget")["riskops-scoring"]["spec"] == {
        "minAvailable": 2,
        "selector": {"matchLabels": {"app.kubernetes.io/name": "riskops-scoring"}},
    }


# --- Helm values of the official Prefect charts ----------------------------------------------

CHARTS = ("prefect-server", "prefect-worker")


def _chart_schema(chart: str) -> dict[str, Any]:
    schema = json.loads((HELM / "schemas" / f"{chart}.values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return schema


def _undeclared(values: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Keys of ``values`` the schema does not declare (typos pass schemas that allow extras)."""
    if not isinstance(values, dict) or "properties" not in schema:
        return []
    out = []
    for key, value in values.items():
        sub = schema["properties"].get(key)
        if sub is None:
            out.append(f"{path}{key}")
        else:
            out += _undeclared(value, sub, f"{path}{key}.")
    return out


def _values(chart: str) -> dict[str, Any]:
    return yaml.safe_load((HELM / f"{chart}.values.yaml").read_text())


@pytest.mark.parametrize("chart", CHARTS)
def test_helm_values_follow_the_chart_schema(chart):
    schema, values = _chart_schema(chart), _values(chart)
    errors = [
        f"{list(e.path)}: {e.message}"
        for e in jsonschema.Draft7Validator(schema).iter_errors(values)
    ]
    assert errors == []
    assert _undeclared(values, schema) == []


def test_helm_schema_check_catches_bad_values():
    worker = _values("prefect-worker")
    worker["worker"]["config"]["workpool"] = POOL_NAME  # typo of workPool
    worker["worker"]["replicaCount"] = "one"
    errors = list(jsonschema.Draft7Validator(_chart_schema("prefect-worker")).iter_errors(worker))
    assert {e.validator for e in errors} == {"additionalProperties", "type"}
    server = _values("prefect-server")
    server["servre"] = {}
    assert _undeclared(server, _chart_schema("prefect-server")) == ["servre"]


def test_helm_values_agree_with_the_manifests_and_the_pool():
    worker, server = _values("prefect-worker"), _values("prefect-server")
    config = worker["worker"]["config"]
    assert config["workPool"] == POOL_NAME and config["type"] == "kubernetes"
    assert config["baseJobTemplate"]["existingConfigMapName"] in by_kind(BASE, "ConfigMap")
    assert worker["serviceAccount"] == {"create": False, "name": "prefect-worker"}
    assert worker["role"]["create"] is False and worker["rolebinding"]["create"] is False
    assert worker["worker"]["image"]["repository"] == "ghcr.io/riskops/riskops-flows"
    assert worker["worker"]["image"]["prefectTag"] == VERSION
    env = by_kind(BASE, "ConfigMap")["riskops-platform-env"]["data"]
    api = env["PREFECT_API_URL"]
    assert worker["worker"]["selfHostedServerApiConfig"]["apiUrl"] == api
    host = re.match(r"http://([^.]+)\.riskops\.svc", api)
    assert host and host.group(1) == server["fullnameOverride"]
    assert f":{server['service']['port']}/" in api
    assert server["global"]["prefect"]["image"]["prefectTag"].startswith("3.9.1-")
    assert server["postgresql"]["enabled"] is False
    # Both charts run restricted-profile pods, like the namespace enforces.
    namespace = by_kind(BASE, "Namespace")["riskops"]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for context in (
        worker["worker"]["containerSecurityContext"],
        worker["worker"]["initContainer"]["containerSecurityContext"],
        server["server"]["containerSecurityContext"],
    ):
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["readOnlyRootFilesystem"] and not context["allowPrivilegeEscalation"]
    for pod in (worker["worker"]["podSecurityContext"], server["server"]["podSecurityContext"]):
        assert pod["runAsNonRoot"] and pod["seccompProfile"] == {"type": "RuntimeDefault"}


def test_schemas_are_vendored_with_their_source():
    readme = (ROOT / "infra" / "k8s" / "schemas" / "README.md").read_text()
    assert "prometheus-operator" in readme and "0.93.0" in readme
    helm_readme = (HELM / "schemas" / "README.md").read_text()
    assert "75b0c2776ec08bb00e3cf29b8bf1a8a8c5daa3e1" in helm_readme


def test_rendering_failure_names_the_directory(tmp_path):
    with pytest.raises(kustomize.KustomizeError, match=str(tmp_path)):
        kustomize.render(tmp_path)


def test_metrics_need_a_key_and_the_in_process_slo_tracker_is_off_on_the_cluster():
    # Behind a mesh sidecar every request comes from loopback: the key check must not depend
    # on it. Alertmanager announces breaches here; a tracker per replica would repeat them.
    def env(deployment: str) -> dict[str, str]:
        (container,) = by_kind(BASE, "Deployment")[deployment]["spec"]["template"]["spec"][
            "containers"
        ]
        return {e["name"]: e.get("value") for e in container.get("env", [])}

    scoring, governance = env("riskops-scoring"), env("riskops-governance")
    assert scoring["RISKOPS_SCORING_METRICS_REQUIRE_KEY"] == "true"
    assert scoring["RISKOPS_SLO_TRACKER"] == "false"
    assert governance["RISKOPS_GOVERNANCE_METRICS_REQUIRE_KEY"] == "true"
