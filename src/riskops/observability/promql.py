"""Which metrics a PromQL expression reads, and which metrics riskops exports.

Enough of PromQL to check dashboards and rules against what the service, the platform exporter
and the recording rules export: strings, label matchers, range and offset durations, grouping
label lists and Grafana variables are removed, then every remaining name that is not a keyword
or a function call is a metric name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from prometheus_client import CollectorRegistry

_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+")
_NAME = re.compile(r"(?<![\w:.])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")
_DURATION = re.compile(r"^\d")
KEYWORDS = frozenset({
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "offset", "bool", "inf", "nan", "sum", "min", "max", "avg", "count", "stddev", "stdvar",
    "topk", "bottomk", "quantile", "count_values", "group",
})  # fmt: skip
BUILTIN = frozenset({"up", "ALERTS", "ALERTS_FOR_STATE"})  # series Prometheus itself writes


def metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` selects (not functions, keywords or label names)."""
    text = _VARIABLE.sub("0", _STRING.sub('""', expr))
    text = _GROUPING.sub(" ", _RANGE.sub(" ", _MATCHERS.sub(" ", text)))
    names = set()
    for match in _NAME.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in KEYWORDS or _DURATION.match(name):
            continue
        names.add(name)
    return names


def exported_names(registry: CollectorRegistry) -> set[str]:
    """The sample names a prometheus_client registry exposes (``_total``, ``_bucket`` ...)."""
    names: set[str] = set()
    for family in registry.collect():
        if family.type == "counter":
            names |= {f"{family.name}_total", f"{family.name}_created"}
        elif family.type == "histogram":
            names |= {f"{family.name}{s}" for s in ("_bucket", "_count", "_sum", "_created")}
        else:
            names.add(family.name)
    return names


def recorded_names(rule_files: Iterable[dict]) -> set[str]:
    """The names of the recording rules in parsed rule files."""
    return {
        r["record"] for f in rule_files for g in f["groups"] for r in g["rules"] if "record" in r
    }
