"""Reason codes of one decision: contributions grouped by raw input, the top ``k`` in words.

The service and batch scoring explain every refer and decline, so this runs per explained row:
the grouping of model inputs into reasons is fixed per model version and prepared once
(:class:`Explainer`); a row's contributions are summed per group in one ``bincount``, and only
the few groups that are reported are put into words. Same reasons, same order and the same
sums as :func:`riskops.validation.explain.reason_codes` (ties broken by name).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from riskops.validation.explain import phrase

MIN_CONTRIBUTION = 1e-9  # a group pushing the score up by less is no reason


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason code: the input, its push on the log-odds and the words for a customer."""

    input: str
    contribution: float
    text: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"feature": self.input, "contribution": self.contribution, "text": self.text}


class Explainer:
    """Top ``k`` raw inputs pushing one score up, for one model version's inputs.

    Args:
        inputs: the model inputs, in the order of the contribution vectors.
        groups: model input -> the raw input its reasons are given under (missing: itself).
        reference: median / most frequent value per input, for "high" / "low".
        categorical: the categorical inputs.
        k: reasons per decision at most.
    """

    def __init__(
        self,
        inputs: Sequence[str],
        *,
        groups: Mapping[str, str],
        reference: Mapping[str, Any],
        categorical: Collection[str],
        k: int,
    ) -> None:
        self._inputs = list(inputs)
        labels = list(dict.fromkeys(groups.get(name, name) for name in self._inputs))
        position = {label: j for j, label in enumerate(labels)}
        self._labels = labels
        self._rank = np.argsort(np.argsort(np.array(labels, dtype=object)))  # ties: by name
        self._group = np.array(
            [position[groups.get(name, name)] for name in self._inputs], dtype=np.intp
        )
        members: dict[int, list[int]] = {}
        for i, j in enumerate(self._group.tolist()):
            members.setdefault(j, []).append(i)
        self._members = members
        self._reference = dict(reference)
        self._categorical = frozenset(categorical)
        self._k = k

    def __call__(self, contributions: np.ndarray, features: Mapping[str, Any]) -> list[Reason]:
        """The reasons for one row (``contributions``: one value per input, log-odds)."""
        c = np.asarray(contributions, dtype=np.float64)
        if len(c) != len(self._inputs):
            raise ValueError(f"{len(c)} contributions for {len(self._inputs)} model inputs")
        finite = np.isfinite(c)
        totals = np.bincount(
            self._group, weights=np.where(finite, c, 0.0), minlength=len(self._labels)
        )
        # Largest total first, ties by name; only pushes up count (those sort first).
        order = np.lexsort((self._rank, -totals))[: self._k].tolist()
        pushes = [(float(totals[j]), self._labels[j], j) for j in order]
        out = []
        for total, label, j in pushes:
            if not total > MIN_CONTRIBUTION:
                break
            if label in features:
                name = label
            else:  # the group's largest finite member, ties by name
                name = max(
                    ((float(c[i]), self._inputs[i]) for i in self._members[j] if finite[i]),
                )[1]
            text = phrase(
                name, features[name], reference=self._reference.get(name),
                categorical=name in self._categorical,
            )  # fmt: skip
            out.append(Reason(label, total, text))
        return out
