"""prefect.yaml is the one place deployments live; it must agree with the library."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import yaml

from riskops import events
from riskops.landing.watcher import landed_event
from riskops.records import LandedObject
from tests.conftest import ROOT

PREFECT_YAML = yaml.safe_load((ROOT / "prefect.yaml").read_text())
DEPLOYMENTS = PREFECT_YAML["deployments"]
TRIGGERS = [(d["name"], t) for d in DEPLOYMENTS for t in d.get("triggers", [])]


def test_every_trigger_names_a_defined_event():
    assert TRIGGERS, "prefect.yaml declares no triggers"
    for name, trigger in TRIGGERS:
        for expected in trigger["expect"]:
            assert expected in events.ALL_EVENTS, f"{name}: unknown event {expected!r}"
        pattern = trigger.get("match", {}).get("prefect.resource.id", "")
        prefix = pattern.removesuffix(".*")
        assert prefix in events.RESOURCE_PREFIXES, f"{name}: unknown resource pattern {pattern!r}"


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=[d["name"] for d in DEPLOYMENTS])
def test_entrypoint_imports_and_parameters_match(deployment):
    path, func = deployment["entrypoint"].split(":")
    spec = importlib.util.spec_from_file_location(f"_entry_{func}", ROOT / path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    flow = getattr(module, func)
    accepted = set(flow.parameters.properties)
    for trigger in deployment.get("triggers", []):
        assert set(trigger["parameters"]) <= accepted, deployment["name"]
    assert deployment["work_pool"]["name"] == "riskops-process"


def test_landed_trigger_reads_payload_keys_the_watcher_sends():
    (name, trigger), *_ = [(n, t) for n, t in TRIGGERS if events.DATA_LANDED in t["expect"]]
    row = LandedObject(
        model="credit-scoring", sha256="a" * 64, uri="file:///x", filename="x.csv", size_bytes=1
    )
    payload = landed_event(row).payload
    for template in trigger["parameters"].values():
        for key in re.findall(r"event\.payload\.(\w+)", template):
            assert key in payload, f"{name} reads payload.{key}, which the watcher does not send"


def test_pull_step_runs_flows_from_the_checkout():
    (step,) = PREFECT_YAML["pull"]
    directory = step["prefect.deployments.steps.set_working_directory"]["directory"]
    assert directory == "{{ $RISKOPS_PROJECT_DIR }}"
    assert Path(ROOT / "flows").is_dir()


def test_library_never_imports_the_layers_above_it():
    """DESIGN.md section 3: src/riskops imports nothing from flows/, blocks/, deployments/."""
    offenders = []
    for path in (ROOT / "src" / "riskops").rglob("*.py"):
        for line in path.read_text().splitlines():
            stripped = line.strip()
            if re.match(r"(from|import) (flows|blocks|deployments)\b", stripped):
                offenders.append(f"{path.relative_to(ROOT)}: {stripped}")
    assert offenders == []
