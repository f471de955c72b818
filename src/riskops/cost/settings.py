"""The price table of cost estimates (``RISKOPS_COST_*``).

The defaults are round example figures of the order of a general-purpose cloud VM in EUR in
2026, not a quote from any provider: set your own contract's prices.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CostSettings(BaseSettings):
    """Prices per resource-hour, spot discount, and what a run is charged for."""

    model_config = SettingsConfigDict(env_prefix="RISKOPS_COST_", extra="ignore", env_file=None)

    currency: str = Field(
        default="EUR", min_length=3, max_length=8, description="Currency of every price."
    )
    vcpu_hour: float = Field(
        default=0.04, ge=0, description="On-demand price of one vCPU for one hour (example)."
    )
    gib_hour: float = Field(
        default=0.005,
        ge=0,
        description="On-demand price of one GiB of memory for one hour (example).",
    )
    gpu_hour: float = Field(
        default=2.5, ge=0, description="On-demand price of one GPU for one hour (example)."
    )
    spot: bool = Field(
        default=False,
        description="The run is on spot (preemptible) capacity: the spot discount applies.",
    )
    spot_discount: float = Field(
        default=0.6, ge=0, lt=1, description="Share taken off on-demand prices on spot (example)."
    )
    requested_vcpus: float = Field(
        default=0.0,
        ge=0,
        description="vCPUs reserved for the run (a pod's CPU request); charged for the whole wall "
        "time when more than the CPU-seconds used. 0: charge only what was used.",
    )
    requested_memory_gib: float = Field(
        default=0.0,
        ge=0,
        description="Memory reserved for the run in GiB (a pod's memory request); charged when "
        "more than the measured peak. 0: charge the peak.",
    )
    gpus: int = Field(default=0, ge=0, description="GPUs attached to the run (nvidia.com/gpu).")
    sample_seconds: float = Field(
        default=0.25,
        gt=0,
        le=60,
        description="How often the meter samples the resident memory of the process tree.",
    )
