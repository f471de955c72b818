"""Stage guards that turn hopeless inputs into clear errors before any work is done."""

from __future__ import annotations

import pandas as pd
import pytest

from riskops.stages.training import MIN_ROWS_PER_CLASS, _check_trainable


def test_too_few_labels_of_a_class_is_refused_with_counts(credit_spec):
    frame = pd.DataFrame({"default_12m": [1] * 3 + [0] * 500})
    with pytest.raises(ValueError, match=r"503 rows with 3 positive \(1\) and 500 other labels"):
        _check_trainable(credit_spec, frame, "credit-scoring-abc")
    enough = pd.DataFrame({"default_12m": [1] * MIN_ROWS_PER_CLASS + [0] * 500})
    _check_trainable(credit_spec, enough, "credit-scoring-abc")
