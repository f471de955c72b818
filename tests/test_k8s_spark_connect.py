"""infra/k8s/spark-connect/: rendered, validated against the Kubernetes schemas, hardened, and
consistent with the server's own command line and with what flow runs are told to use."""

from __future__ import annotations

import copy
import os

import pytest
import yaml

from riskops.features.connect_server import config_from_args, server_argv
from riskops.kube import kustomize
from riskops.kube.checks import ManifestError, hardening_violations, validate_resource
from tests.conftest import ROOT

K8S = ROOT / "infra" / "k8s"
HERE = K8S / "spark-connect"
SCHEMAS = K8S / "schemas"
REMOTE = "sc://riskops-spark-connect.riskops.svc:15002"  # what docs/spark.md tells flow runs

if kustomize.kubectl() is None:
    if os.environ.get("CI") == "true":
        raise RuntimeError("kubectl is missing on CI: infra/k8s/spark-connect cannot be rendered")
    pytest.skip("kubectl is not installed (CI fails instead of skipping)", allow_module_level=True)

RENDERED = kustomize.render(HERE)
TEMPLATE = yaml.safe_load((HERE / "executor-pod-template.yaml").read_text())


def _get(kind: str, name: str) -> dict:
    (found,) = [r for r in RENDERED if r["kind"] == kind and r["metadata"]["name"] == name]
    return found


def _server_args() -> list[str]:
    container = _get("Deployment", "riskops-spark-connect")["spec"]["template"]["spec"]
    (server,) = container["containers"]
    assert server["command"] == ["python", "-m", "riskops.features.connect_server"]
    return [a.replace("$(POD_NAME)", "riskops-spark-connect-0") for a in server["args"]]


def test_every_resource_and_the_executor_template_are_valid_and_hardened():
    kinds = sorted(r["kind"] for r in RENDERED)
    assert kinds == sorted(
        ["ServiceAccount", "Role", "RoleBinding", "PersistentVolumeClaim", "Deployment",
         "Service", "Service", "NetworkPolicy", "NetworkPolicy", "ConfigMap"]
    )  # fmt: skip
    for resource in [*RENDERED, TEMPLATE]:
        validate_resource(resource, schema_dir=SCHEMAS)
        assert hardening_violations(resource) == []
        assert resource["metadata"].get("namespace", "riskops") == "riskops"
    assert all(r["metadata"]["labels"]["app.kubernetes.io/part-of"] == "riskops" for r in RENDERED)


def test_the_checks_catch_a_root_writable_unlimited_server_and_a_bad_field():
    bad = copy.deepcopy(_get("Deployment", "riskops-spark-connect"))
    pod = bad["spec"]["template"]["spec"]
    pod["securityContext"].pop("runAsNonRoot")
    container = pod["containers"][0]
    container["securityContext"]["readOnlyRootFilesystem"] = False
    container["securityContext"].pop("runAsNonRoot")
    del container["resources"]["limits"]
    problems = "\n".join(hardening_violations(bad))
    for expected in ("may run as root", "root filesystem is writable", "no memory limit"):
        assert expected in problems
    container["ports"][0]["containerPort"] = "fifteen-thousand"
    with pytest.raises(ManifestError, match="riskops-spark-connect"):
        validate_resource(bad, schema_dir=SCHEMAS)


def test_the_server_command_line_binds_where_the_services_and_policies_point():
    config, log_dir = config_from_args(_server_args())
    argv = server_argv(config)
    conf = dict(a.split("=", 1) for a in argv[argv.index("--master") + 2 :] if "=" in a)
    assert argv[argv.index("--master") + 1] == "k8s://https://kubernetes.default.svc:443"
    assert conf["spark.connect.grpc.binding.port"] == "15002"
    assert conf["spark.connect.grpc.binding.address"] == "0.0.0.0"  # the policy restricts
    # the cluster's settings come after the local defaults, so they win
    assert conf["spark.driver.host"] == "riskops-spark-connect-driver.riskops.svc"
    assert conf["spark.log.level"] == "WARN"  # no plans (with the pseudonym pads) in the log
    assert str(log_dir) == "/var/lib/spark/logs"
    deployment = _get("Deployment", "riskops-spark-connect")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"grpc": 15002, "driver": int(conf["spark.driver.port"]),
                     "blockmanager": int(conf["spark.blockManager.port"])}  # fmt: skip
    service = _get("Service", "riskops-spark-connect")
    host, port = REMOTE.removeprefix("sc://").split(":")
    assert f"{service['metadata']['name']}.riskops.svc" == host
    assert service["spec"]["ports"][0]["port"] == int(port)
    driver = _get("Service", "riskops-spark-connect-driver")
    assert f"{driver['metadata']['name']}.riskops.svc" == conf["spark.driver.host"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    template_path = conf["spark.kubernetes.executor.podTemplateFile"]
    assert template_path.startswith(mounts["executor-template"] + "/")
    config_map = _get("ConfigMap", "riskops-spark-executor-template")
    assert yaml.safe_load(config_map["data"][template_path.rsplit("/", 1)[1]]) == TEMPLATE
    assert conf["spark.kubernetes.container.image"] == container["image"]
    assert TEMPLATE["spec"]["containers"][0]["image"] == container["image"]


def test_only_flow_runs_reach_the_server_and_the_driver_may_only_manage_its_pods():
    policy = _get("NetworkPolicy", "riskops-spark-connect")
    grpc, driver = policy["spec"]["ingress"]
    (flow_runs,) = grpc["from"]
    assert flow_runs["podSelector"]["matchExpressions"][0]["key"] == "prefect.io/flow-run-id"
    assert [p["port"] for p in grpc["ports"]] == ["grpc"]
    assert driver["from"][0]["podSelector"]["matchLabels"] == {"spark-role": "executor"}
    role = _get("Role", "riskops-spark-driver")
    resources = {r for rule in role["rules"] for r in rule["resources"]}
    assert resources == {"pods", "services", "configmaps", "persistentvolumeclaims"}
    assert all(rule["apiGroups"] == [""] for rule in role["rules"])
    assert "*" not in {v for rule in role["rules"] for v in rule["verbs"]}
    # the shared volume is mounted at the same path by the server and every executor
    deployment = _get("Deployment", "riskops-spark-connect")
    server = deployment["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    executor = TEMPLATE["spec"]["containers"][0]["volumeMounts"]
    shared = {m["mountPath"] for m in server if m["name"] == "shared"}
    assert shared == {m["mountPath"] for m in executor if m["name"] == "shared"}
