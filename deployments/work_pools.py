"""Work pools that prefect.yaml deployments run on.

Run by `riskops up` as `python -m deployments.work_pools`.
"""

from __future__ import annotations

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectAlreadyExists

PROCESS_POOL = "riskops-process"  # prefect.yaml names the same pool


def ensure_process_pool() -> bool:
    """Create the local `process` pool; False when it already existed."""
    with get_client(sync_client=True) as client:
        try:
            client.create_work_pool(WorkPoolCreate(name=PROCESS_POOL, type="process"))
        except ObjectAlreadyExists:
            return False
    return True


def main() -> None:
    created = ensure_process_pool()
    print(f"work pool {PROCESS_POOL}: {'created' if created else 'exists'}")


if __name__ == "__main__":
    main()
