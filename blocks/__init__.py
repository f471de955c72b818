"""Custom Prefect blocks: configuration that hands out clients, never logic."""

from blocks.platform import PLATFORM_BLOCK, RiskopsPlatform

__all__ = ["PLATFORM_BLOCK", "RiskopsPlatform"]
