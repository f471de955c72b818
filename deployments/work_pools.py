"""Work pools that the prefect files' deployments run on.

Run by `riskops up` as `python -m deployments.work_pools` (the local `process` pool only).
For the cluster: `python -m deployments.work_pools --target production` creates or updates the
`kubernetes` pool that deployments/prefect.production.yaml names.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
from prefect.exceptions import ObjectAlreadyExists

from riskops.kube.work_pool import POOL_NAME, kubernetes_base_job_template

PROCESS_POOL = "riskops-process"  # prefect.yaml names the same pool
KUBERNETES_POOL = POOL_NAME  # deployments/prefect.production.yaml names the same pool
INFRA = Path(__file__).resolve().parents[1] / "infra"
TEMPLATE_FILE = INFRA / "k8s" / "base" / f"{POOL_NAME}.base-job-template.json"


def ensure_process_pool() -> bool:
    """Create the local `process` pool; False when it already existed."""
    with get_client(sync_client=True) as client:
        try:
            client.create_work_pool(WorkPoolCreate(name=PROCESS_POOL, type="process"))
        except ObjectAlreadyExists:
            return False
    return True


def ensure_kubernetes_pool() -> bool:
    """Create the `kubernetes` pool, or update its base job template; True when created."""
    template = kubernetes_base_job_template()
    with get_client(sync_client=True) as client:
        try:
            client.create_work_pool(
                WorkPoolCreate(name=KUBERNETES_POOL, type="kubernetes", base_job_template=template)
            )
        except ObjectAlreadyExists:
            client.update_work_pool(KUBERNETES_POOL, WorkPoolUpdate(base_job_template=template))
            return False
    return True


def template_json() -> str:
    """The base job template as written to infra/k8s/base/ (the worker chart mounts it)."""
    return json.dumps(kubernetes_base_job_template(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Create the riskops work pools.")
    parser.add_argument(
        "--target",
        choices=["local", "production"],
        default="local",
        help="local: the process pool of `riskops up`; production: the kubernetes pool",
    )
    parser.add_argument(
        "--write-template",
        action="store_true",
        help=f"only write the kubernetes base job template to {TEMPLATE_FILE.name}",
    )
    args = parser.parse_args(argv)
    if args.write_template:
        TEMPLATE_FILE.write_text(template_json())
        print(f"wrote {TEMPLATE_FILE}")
        return 0
    if args.target == "production":
        created = ensure_kubernetes_pool()
        print(f"work pool {KUBERNETES_POOL}: {'created' if created else 'template updated'}")
        return 0
    created = ensure_process_pool()
    print(f"work pool {PROCESS_POOL}: {'created' if created else 'exists'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
