"""Feature definitions declared once per family, compiled to Spark (batch) and pandas (online).

Import the compilers from their modules: ``riskops.features.spark_build`` /
``riskops.features.featureset`` need pyspark, ``riskops.features.pandas_build`` does not.
"""

from riskops.features.definitions import (
    MISSING,
    UNSEEN,
    Bucket,
    DayOfWeek,
    Definition,
    HourOfDay,
    Log1p,
    Normalised,
    Ratio,
    SincePrevious,
    Velocity,
)
from riskops.features.families import derived_features
from riskops.features.plan import FeaturePlan, SkippedFeature, feature_plan

__all__ = [
    "MISSING",
    "UNSEEN",
    "Bucket",
    "DayOfWeek",
    "Definition",
    "FeaturePlan",
    "HourOfDay",
    "Log1p",
    "Normalised",
    "Ratio",
    "SincePrevious",
    "SkippedFeature",
    "Velocity",
    "derived_features",
    "feature_plan",
]
