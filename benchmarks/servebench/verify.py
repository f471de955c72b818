"""Before a contender is loaded, check that it answers every body with the booster's score."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np

TOLERANCE = 1e-9


@dataclass(frozen=True)
class Verification:
    """How many bodies were answered 200 with the score ``booster.predict`` gives."""

    sent: int
    ok_status: int
    matched: int
    first_problem: str | None

    @property
    def passed(self) -> bool:
        return self.sent > 0 and self.matched == self.sent

    def as_dict(self) -> dict:
        return {
            "sent": self.sent,
            "ok_status": self.ok_status,
            "matched": self.matched,
            "first_problem": self.first_problem,
            "passed": self.passed,
        }


def numbers_in(document: Any) -> Iterator[float]:
    """Every number (not bool) anywhere in a decoded JSON document."""
    if isinstance(document, bool):
        return
    if isinstance(document, int | float):
        yield float(document)
    elif isinstance(document, dict):
        for value in document.values():
            yield from numbers_in(value)
    elif isinstance(document, list):
        for value in document:
            yield from numbers_in(value)


def verify_target(
    url: str, target: Any, expected: np.ndarray, timeout: float = 30.0
) -> Verification:
    """POST each of ``target.bodies`` once; compare the answer with ``expected`` (same order).

    With ``target.scores`` the scores are read where the protocol puts them; without, the answer
    passes when any number in it equals the expected score within 1e-9 (our service's response
    shape is the lead's to define; the probability must be in it).
    """
    ok = matched = 0
    problem: str | None = None
    with httpx.Client(timeout=timeout, headers=target.headers) as client:
        for i, (body, want) in enumerate(zip(target.bodies, expected, strict=True)):
            response = client.post(url, content=body.encode())
            if response.status_code != 200:
                problem = problem or f"body {i}: HTTP {response.status_code}: {response.text[:300]}"
                continue
            ok += 1
            try:
                answer = response.json()
                found = (
                    [float(s) for s in target.scores(answer)]
                    if target.scores
                    else list(numbers_in(answer))
                )
            except (ValueError, KeyError, IndexError, TypeError) as error:
                problem = problem or f"body {i}: unreadable answer ({error}): {response.text[:300]}"
                continue
            hit = (
                len(found) == 1 and abs(found[0] - want) <= TOLERANCE
                if target.scores
                else any(abs(f - want) <= TOLERANCE for f in found)
            )
            if hit:
                matched += 1
            else:
                problem = problem or (
                    f"body {i}: expected score {want!r}, answer {response.text[:300]}"
                )
    return Verification(len(target.bodies), ok, matched, problem)
