"""The one door to whylogs: applies the numpy 2 alias whylogs 1.6.4 needs, then imports it.

whylogs 1.6.4 (its last release) still reads ``numpy.unicode_``, which numpy 2 removed
(whylogs/core/datatypes.py). Importing whylogs anywhere else would fail on numpy 2, so every
module of riskops, and every Spark worker function, imports whylogs through this module.
"""

from __future__ import annotations

import numpy

if not hasattr(numpy, "unicode_"):  # numpy 2: alias the removed name before whylogs reads it
    numpy.unicode_ = numpy.str_  # type: ignore[attr-defined]

import whylogs
import whylogs_sketching as sketching
from whylogs.core.metrics.column_metrics import (
    ColumnCountsMetric,
    TypeCountersMetric,
)
from whylogs.core.metrics.metric_components import (
    FractionalComponent,
    FrequentStringsComponent,
    HllComponent,
    IntegralComponent,
    KllComponent,
    MaxIntegralComponent,
    MinIntegralComponent,
)
from whylogs.core.metrics.metrics import (
    CardinalityMetric,
    DistributionMetric,
    FrequentItemsMetric,
    IntsMetric,
    MetricConfig,
)
from whylogs.core.view.column_profile_view import ColumnProfileView
from whylogs.core.view.dataset_profile_view import DatasetProfileView

WHYLOGS_VERSION: str = whylogs.__version__

__all__ = [
    "WHYLOGS_VERSION",
    "CardinalityMetric",
    "ColumnCountsMetric",
    "ColumnProfileView",
    "DatasetProfileView",
    "DistributionMetric",
    "FractionalComponent",
    "FrequentItemsMetric",
    "FrequentStringsComponent",
    "HllComponent",
    "IntegralComponent",
    "IntsMetric",
    "KllComponent",
    "MaxIntegralComponent",
    "MetricConfig",
    "MinIntegralComponent",
    "TypeCountersMetric",
    "sketching",
    "whylogs",
]
