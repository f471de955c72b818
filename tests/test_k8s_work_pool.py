"""The kubernetes work pool and the production target, rendered as the worker would render them.

Each production deployment's Job is produced by prefect-kubernetes' own code
(``KubernetesWorkerJobConfiguration.from_template_and_values`` + ``prepare_for_flow_run`` on a
real ``FlowRun``) and validated against the Kubernetes 1.31 schemas, strictly.
"""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest
import yaml
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect_kubernetes.worker import KubernetesWorker

from deployments import production, work_pools
from riskops.kube.checks import ManifestError, hardening_violations, validate_resource
from riskops.kube.jobs import render_flow_run_job
from riskops.kube.production import (
    DEPLOYMENT_PROFILES,
    GPU_RUN_VARIABLES,
    PROFILES,
    SPOT_TOLERATIONS,
)
from riskops.kube.work_pool import (
    GPU_RESOURCE,
    NAMESPACE,
    POOL_NAME,
    SERVICE_ACCOUNT,
    kubernetes_base_job_template,
)
from tests.conftest import ROOT

SCHEMAS = ROOT / "infra" / "k8s" / "schemas"
TEMPLATE = kubernetes_base_job_template()
SOURCE = yaml.safe_load((ROOT / "prefect.yaml").read_text())
TARGET = yaml.safe_load(production.PRODUCTION_YAML.read_text())
BY_NAME = {d["name"]: d for d in TARGET["deployments"]}
WORKER_API = "http://prefect-server.riskops.svc.cluster.local:4200/api"
# prefect-kubernetes' own validator requires these two Job fields inside the pod spec
# (worker._get_base_job_manifest); they are not PodSpec fields, and the API server drops them.
UPSTREAM_EXTRA = {("spec", "template", "spec"): {"parallelism", "completions"}}
LARGE = {n for n, p in DEPLOYMENT_PROFILES.items() if p == "large"}


def render(name: str, run_vars: dict | None = None) -> dict:
    deployment = BY_NAME[name]
    _, func = deployment["entrypoint"].split(":")
    with temporary_settings(updates={PREFECT_API_URL: WORKER_API}):
        return render_flow_run_job(
            TEMPLATE,
            pool_name=POOL_NAME,
            deployment_name=name,
            flow_name=func.replace("_", "-"),
            deployment_job_variables=deployment["work_pool"]["job_variables"],
            flow_run_job_variables=run_vars,
        )


def container(job: dict) -> dict:
    (only,) = job["spec"]["template"]["spec"]["containers"]
    return only


def env(job: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(job)["env"]}


def test_template_extends_prefect_kubernetes_default_without_dropping_anything():
    default = KubernetesWorker.get_default_base_job_template()
    ours = TEMPLATE["variables"]["properties"]
    for name, schema in default["variables"]["properties"].items():
        assert name in ours, name
        assert {k: v for k, v in ours[name].items() if k != "default"} == {
            k: v for k, v in schema.items() if k != "default"
        }, name
    assert set(default["job_configuration"]) == set(TEMPLATE["job_configuration"])
    pod = TEMPLATE["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == "{{ node_selector }}"
    assert pod["tolerations"] == "{{ tolerations }}"
    assert container({"spec": {"template": {"spec": pod}}})["resources"]["limits"] == {
        "cpu": "{{ cpu_limit }}",
        "memory": "{{ memory_limit }}",
        GPU_RESOURCE: "{{ gpu_limit }}",
    }


def test_committed_template_file_is_the_code():
    assert work_pools.TEMPLATE_FILE.read_text() == work_pools.template_json(), (
        "infra/k8s/base/ holds a stale base job template: "
        "run python -m deployments.work_pools --write-template"
    )
    assert json.loads(work_pools.TEMPLATE_FILE.read_text()) == TEMPLATE


def test_production_file_is_generated_from_prefect_yaml(tmp_path, monkeypatch):
    assert production.main(["--check"]) == 0
    stale = tmp_path / "prefect.production.yaml"
    stale.write_text(production.PRODUCTION_YAML.read_text().replace("16Gi", "15Gi"))
    monkeypatch.setattr(production, "PRODUCTION_YAML", stale)
    assert production.main(["--check"]) == 1


def test_production_deployments_are_prefect_yaml_on_the_kubernetes_pool():
    assert [d["name"] for d in TARGET["deployments"]] == [d["name"] for d in SOURCE["deployments"]]
    for source in SOURCE["deployments"]:
        target = copy.deepcopy(BY_NAME[source["name"]])
        assert target.pop("work_pool")["name"] == POOL_NAME
        expected = {k: v for k, v in source.items() if k != "work_pool"}
        assert target == expected, source["name"]  # entrypoint, triggers, schedules, tags
    assert set(DEPLOYMENT_PROFILES) == set(BY_NAME)


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_job_variables_are_declared_and_valid_for_the_pool(name):
    variables = BY_NAME[name]["work_pool"]["job_variables"]
    schema = TEMPLATE["variables"]
    assert set(variables) <= set(schema["properties"]), set(variables) - set(schema["properties"])
    jsonschema.validate(variables, schema)


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_rendered_flow_run_job_is_valid_and_carries_the_job_variables(name):
    job = render(name)
    validate_resource(job, schema_dir=SCHEMAS, allowed_extra=UPSTREAM_EXTRA)
    assert hardening_violations(job) == []

    variables = BY_NAME[name]["work_pool"]["job_variables"]
    profile = PROFILES[DEPLOYMENT_PROFILES[name]]
    pod = job["spec"]["template"]["spec"]
    main = container(job)
    assert job["metadata"]["namespace"] == NAMESPACE
    assert pod["serviceAccountName"] == SERVICE_ACCOUNT
    assert main["image"] == variables["image"] == "ghcr.io/riskops/riskops-flows:0.1.0"
    assert main["resources"] == {
        "requests": {"cpu": profile["cpu_request"], "memory": profile["memory_request"]},
        "limits": {"cpu": profile["cpu_limit"], "memory": profile["memory_limit"]},
    }
    assert GPU_RESOURCE not in main["resources"]["limits"]
    assert main["args"] == ["prefect", "flow-run", "execute"]
    run_env = env(job)
    assert run_env["PREFECT_API_URL"] == WORKER_API
    assert run_env["PREFECT__FLOW_RUN_ID"] == job["metadata"]["labels"]["prefect.io/flow-run-id"]
    assert run_env["RISKOPS_PROJECT_DIR"] == "/opt/riskops"
    assert run_env["RISKOPS_HOME"] == "/var/lib/riskops"  # the pool default survives the merge
    # backoffLimit 0: a spot eviction's SIGTERM reschedules the run instead of failing it
    assert job["spec"]["backoffLimit"] == 0
    assert run_env["PREFECT_FLOW_RUN_EXECUTE_SIGTERM_BEHAVIOR"] == "reschedule"
    if name in LARGE:
        assert pod["tolerations"] == SPOT_TOLERATIONS
        assert pod["affinity"]["nodeAffinity"]
    else:
        assert pod["tolerations"] == [] and pod["affinity"] == {}


def test_contract_check_is_small_and_feature_build_is_large():
    small, large = container(render("contract-check")), container(render("feature-build"))
    assert small["resources"]["limits"]["memory"] == "2Gi"
    assert large["resources"]["requests"]["memory"] == "16Gi"


def test_a_training_run_can_ask_for_a_gpu():
    job = render("train", run_vars=GPU_RUN_VARIABLES)
    validate_resource(job, schema_dir=SCHEMAS, allowed_extra=UPSTREAM_EXTRA)
    main = container(job)
    assert main["resources"]["limits"][GPU_RESOURCE] == 1
    assert main["resources"]["limits"]["memory"] == "16Gi"  # the deployment's sizes stay
    tolerations = job["spec"]["template"]["spec"]["tolerations"]
    assert {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"} in tolerations


def test_validation_is_strict_and_catches_bad_job_variables():
    job = render("contract-check")
    with pytest.raises(ManifestError, match=r"spec\.template\.spec: Additional properties"):
        validate_resource(job, schema_dir=SCHEMAS)  # the two upstream fields, unexcused
    bad = render("contract-check", run_vars={"tolerations": [{"key": 1, "effect": "NoSchedule"}]})
    with pytest.raises(ManifestError, match=r"tolerations\.0\.key"):
        validate_resource(bad, schema_dir=SCHEMAS, allowed_extra=UPSTREAM_EXTRA)
    rooted = render("contract-check")
    rooted["spec"]["template"]["spec"]["securityContext"]["runAsUser"] = 0
    assert any("may run as root" in p for p in hardening_violations(rooted))


def test_local_stack_keeps_the_process_pool():
    assert work_pools.PROCESS_POOL == "riskops-process"
    assert all(d["work_pool"]["name"] == "riskops-process" for d in SOURCE["deployments"])


def test_each_production_run_is_priced_at_least_at_what_its_pod_reserves(monkeypatch):
    from riskops.cost.settings import CostSettings
    from riskops.kube.production import job_variables

    train = job_variables("train", image="ghcr.io/riskops/riskops-flows:1")
    control = job_variables("promote", image="ghcr.io/riskops/riskops-flows:1")
    assert train["env"]["RISKOPS_COST_REQUESTED_VCPUS"] == "4.0"
    assert train["env"]["RISKOPS_COST_REQUESTED_MEMORY_GIB"] == "16.0"
    assert control["env"]["RISKOPS_COST_REQUESTED_VCPUS"] == "0.25"
    assert control["env"]["RISKOPS_COST_REQUESTED_MEMORY_GIB"] == "0.5"
    for key, value in train["env"].items():
        monkeypatch.setenv(key, value)
    cost = CostSettings()
    assert (cost.requested_vcpus, cost.requested_memory_gib) == (4.0, 16.0)
