"""Custom Prefect blocks: configuration that hands out clients, never logic."""

from blocks.platform import PLATFORM_BLOCK, PSEUDONYM_SECRET_BLOCK, RiskopsPlatform, load_platform

__all__ = ["PLATFORM_BLOCK", "PSEUDONYM_SECRET_BLOCK", "RiskopsPlatform", "load_platform"]
