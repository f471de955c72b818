"""Monitoring: whylogs profiles built fast, stored in the lake, and compared for drift.

Every whylogs import goes through :mod:`riskops.monitoring.whylogs_compat` (numpy 2 alias).
"""

from riskops.monitoring.drift import Band, DriftReport, FeatureDrift, compare_profiles
from riskops.monitoring.profiles import (
    iter_parquet_chunks,
    merge_views,
    profile_chunks,
    profile_frame,
    profile_parquet,
    profile_spark,
)
from riskops.monitoring.schema import ProfileError, ProfileSchema
from riskops.monitoring.store import (
    find_profiles,
    load_merged,
    load_profile,
    profile_key,
    rollup,
    store_profile,
)
from riskops.monitoring.thresholds import DriftThresholds, FeatureThresholds

__all__ = [
    "Band",
    "DriftReport",
    "DriftThresholds",
    "FeatureDrift",
    "FeatureThresholds",
    "ProfileError",
    "ProfileSchema",
    "compare_profiles",
    "find_profiles",
    "iter_parquet_chunks",
    "load_merged",
    "load_profile",
    "merge_views",
    "profile_chunks",
    "profile_frame",
    "profile_key",
    "profile_parquet",
    "profile_spark",
    "rollup",
    "store_profile",
]
