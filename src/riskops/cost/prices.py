"""Usage into money: CPU, memory and GPU hours at the prices of the settings."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from riskops.cost.meter import Usage
from riskops.cost.settings import CostSettings

GIB = 2**30


@dataclass(frozen=True)
class CostEstimate:
    """What a run is charged for, hour by hour, and the total after any spot discount."""

    vcpu_hours: float
    gib_hours: float
    gpu_hours: float
    on_demand: float
    discount: float  # the share taken off (0 on demand)
    total: float
    currency: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def estimate_cost(usage: Usage, prices: CostSettings) -> CostEstimate:
    """The estimated cost of ``usage``.

    vCPU-hours are the larger of the CPU-seconds used and the requested vCPUs held for the wall
    time; GiB-hours are the larger of the peak resident memory and the requested memory, held
    for the wall time (the peak is charged for the whole run: memory is reserved, not metered);
    GPU-hours are the attached GPUs for the wall time. On spot, every price is discounted.
    """
    hours = usage.wall_seconds / 3600.0
    vcpu_hours = max(usage.cpu_seconds / 3600.0, prices.requested_vcpus * hours)
    gib_hours = max(usage.peak_rss_bytes / GIB, prices.requested_memory_gib) * hours
    gpu_hours = prices.gpus * hours
    on_demand = (
        vcpu_hours * prices.vcpu_hour + gib_hours * prices.gib_hour + gpu_hours * prices.gpu_hour
    )
    discount = prices.spot_discount if prices.spot else 0.0
    return CostEstimate(
        vcpu_hours=vcpu_hours,
        gib_hours=gib_hours,
        gpu_hours=gpu_hours,
        on_demand=on_demand,
        discount=discount,
        total=on_demand * (1.0 - discount),
        currency=prices.currency,
    )
