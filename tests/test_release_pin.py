"""The release pins the production target to the flows image it pushed, by digest, and hands
each flow run that digest and the commit; the pinned Jobs still render and validate as the
prefect-kubernetes worker would submit them."""

from __future__ import annotations

import jsonschema
import pytest
import yaml
from prefect.settings import PREFECT_API_URL, temporary_settings

from deployments import production
from riskops.build.release import main, pin_release
from riskops.kube.checks import validate_resource
from riskops.kube.jobs import render_flow_run_job
from riskops.kube.work_pool import POOL_NAME, kubernetes_base_job_template
from tests.conftest import ROOT

IMAGE = "ghcr.io/riskops/riskops-flows@sha256:" + "cd" * 32
COMMIT = "89abcdef0123456789abcdef0123456789abcdef"
TARGET = yaml.safe_load(production.PRODUCTION_YAML.read_text())
# prefect-kubernetes' validator requires two Job fields in the pod spec (see test_k8s_work_pool)
UPSTREAM_EXTRA = {("spec", "template", "spec"): {"parallelism", "completions"}}


def test_every_deployment_runs_the_pushed_digest_and_tells_its_runs(tmp_path):
    out = tmp_path / "prefect.release.yaml"
    argv = ["--target", str(production.PRODUCTION_YAML), "--flows-image", IMAGE,
            "--git-commit", COMMIT, "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    pinned = yaml.safe_load(out.read_text())
    assert [d["name"] for d in pinned["deployments"]] == [d["name"] for d in TARGET["deployments"]]
    template = kubernetes_base_job_template()
    for deployment, original in zip(pinned["deployments"], TARGET["deployments"], strict=True):
        variables = deployment["work_pool"]["job_variables"]
        before = original["work_pool"]["job_variables"]
        assert variables["image"] == IMAGE != before["image"]
        assert variables["env"] == {**before["env"], "RISKOPS_IMAGE_DIGEST": IMAGE,
                                    "RISKOPS_GIT_COMMIT": COMMIT}  # fmt: skip
        assert {k: v for k, v in variables.items() if k not in ("image", "env")} == {
            k: v for k, v in before.items() if k not in ("image", "env")
        }
        jsonschema.validate(variables, template["variables"])
        with temporary_settings(updates={PREFECT_API_URL: "http://prefect:4200/api"}):
            job = render_flow_run_job(
                template, pool_name=POOL_NAME, deployment_name=deployment["name"],
                flow_name=deployment["entrypoint"].split(":")[1].replace("_", "-"),
                deployment_job_variables=variables,
            )  # fmt: skip
        validate_resource(job, schema_dir=ROOT / "infra" / "k8s" / "schemas",
                          allowed_extra=UPSTREAM_EXTRA)  # fmt: skip
        (container,) = job["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert container["image"] == IMAGE
        assert env["RISKOPS_IMAGE_DIGEST"] == IMAGE and env["RISKOPS_GIT_COMMIT"] == COMMIT
    assert yaml.safe_load(production.PRODUCTION_YAML.read_text()) == TARGET  # not edited


@pytest.mark.parametrize(
    ("image", "commit", "message"),
    [
        ("ghcr.io/riskops/riskops-flows:0.1.0", COMMIT, "not an image digest"),
        ("sha256:" + "cd" * 32, COMMIT, "names no repository"),
        (IMAGE, "89abcdef", "not a full git commit"),
    ],
)
def test_a_tag_a_bare_digest_or_a_short_commit_is_refused(image, commit, message):
    with pytest.raises(ValueError, match=message):
        pin_release(TARGET, flows_image=image, git_commit=commit)


def test_a_deployment_off_the_pool_is_refused_and_the_cli_says_so(tmp_path, capsys):
    broken = {"deployments": [{"name": "train", "entrypoint": "flows/train.py:train"}]}
    with pytest.raises(ValueError, match="'train' has no work_pool"):
        pin_release(broken, flows_image=IMAGE, git_commit=COMMIT)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(broken))
    argv = ["--target", str(path), "--flows-image", IMAGE, "--git-commit", COMMIT,
            "--out", str(tmp_path / "out.yaml")]  # fmt: skip
    assert main(argv) == 1
    assert "cannot pin" in capsys.readouterr().err and not (tmp_path / "out.yaml").exists()
