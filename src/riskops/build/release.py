"""Pin the production target to what one release built: ``python -m riskops.build.release``.

``deployments/prefect.production.yaml`` names the flows image by its version tag. The release
workflow writes a copy in which every deployment runs the image it has just pushed, by digest,
and tells each flow run that digest and the commit (``RISKOPS_IMAGE_DIGEST`` and
``RISKOPS_GIT_COMMIT`` in the job's env). Training records both on every model version it
registers. The workflow then runs ``prefect deploy`` on the copy.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import yaml

from riskops.training.provenance import ProvenanceSettings

HEADER = "# WRITTEN by `python -m riskops.build.release` for one release; never commit it.\n"


def pin_release(target: dict[str, Any], *, flows_image: str, git_commit: str) -> dict[str, Any]:
    """``target`` (a parsed prefect file) with every deployment on ``flows_image`` by digest.

    Args:
        flows_image: ``<repository>@sha256:<hex>``, as docker/build-push-action reports it.
        git_commit: the full commit the image was built from.

    Raises:
        ValueError: a malformed image reference or commit, or a deployment without a work pool.
    """
    checked = ProvenanceSettings(git_commit=git_commit, image_digest=flows_image)
    if "@" not in flows_image:
        raise ValueError(
            f"flows image {flows_image!r} names no repository; give <repository>@sha256:<hex>"
        )
    pinned = copy.deepcopy(target)
    for deployment in pinned.get("deployments") or []:
        pool = deployment.get("work_pool")
        if not isinstance(pool, dict) or not pool.get("name"):
            raise ValueError(
                f"deployment {deployment.get('name')!r} has no work_pool; the production target "
                "must put every deployment on the kubernetes pool"
            )
        variables = pool.setdefault("job_variables", {})
        variables["image"] = checked.image_digest
        env = variables.setdefault("env", {})
        env["RISKOPS_IMAGE_DIGEST"] = checked.image_digest
        env["RISKOPS_GIT_COMMIT"] = checked.git_commit
    return pinned


def main(argv: list[str] | None = None) -> int:
    """Read --target, write the pinned copy to --out."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=Path, required=True, help="the production prefect file")
    parser.add_argument("--flows-image", required=True, help="<repository>@sha256:<hex>")
    parser.add_argument("--git-commit", required=True, help="full commit of the release")
    parser.add_argument("--out", type=Path, required=True, help="where to write the pinned copy")
    args = parser.parse_args(argv)
    try:
        target = yaml.safe_load(args.target.read_text(encoding="utf-8"))
        pinned = pin_release(target, flows_image=args.flows_image, git_commit=args.git_commit)
    except (OSError, ValueError) as error:
        print(f"error: cannot pin {args.target}: {error}", file=sys.stderr)
        return 1
    args.out.write_text(HEADER + yaml.safe_dump(pinned, sort_keys=False, width=100))
    count = len(pinned.get("deployments") or [])
    print(f"wrote {args.out}: {count} deployments on {args.flows_image}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
