"""LightGBM's single-row fast path (``LGBM_BoosterPredictForMatSingleRowFast``).

``Booster.predict`` costs about 60 µs per call from Python for one row (it builds a predictor,
copies its parameters and checks the frame each time); the C API's fast path, prepared once per
booster, scores a row in a few microseconds. One :class:`SingleRowPredictor` is used by one
thread at a time (the service's event loop); its answers equal ``booster.predict`` (checked when
the version loads).
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np
from lightgbm.basic import (
    _C_API_DTYPE_FLOAT64,
    _C_API_PREDICT_NORMAL,
    _LIB,
    LightGBMError,
    _c_str,
    _safe_call,
)


class SingleRowPredictor:
    """The booster's transformed prediction (probability) of one float64 row."""

    def __init__(self, booster: Any) -> None:
        self._booster = booster  # keeps the handle alive as long as the predictor
        self.columns = int(booster.num_feature())
        iterations = int(getattr(booster, "best_iteration", 0) or 0)
        self._config = ctypes.c_void_p()
        _safe_call(
            _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                ctypes.c_int(_C_API_PREDICT_NORMAL),
                ctypes.c_int(0),
                ctypes.c_int(iterations if iterations > 0 else -1),
                ctypes.c_int(_C_API_DTYPE_FLOAT64),
                ctypes.c_int32(self.columns),
                _c_str("num_threads=1"),
                ctypes.byref(self._config),
            )
        )
        self._out = np.zeros(1, dtype=np.float64)
        self._out_ptr = self._out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        self._len = ctypes.c_int64(0)
        # The row is copied into a buffer whose pointer is made once: building a ctypes
        # pointer per call costs more than LightGBM's own walk down the trees.
        self._shape = (self.columns,)
        self._in = np.zeros(self.columns, dtype=np.float64)
        self._in_ptr = ctypes.c_void_p(self._in.ctypes.data)
        self._len_ref = ctypes.byref(self._len)
        # Through PyDLL: the call keeps the GIL. A ctypes CDLL call releases it, and for a
        # few microseconds of work that only invites another thread (the decision-log writer)
        # in, which the event loop then waits up to a switch interval to get it back from.
        self._predict = ctypes.PyDLL(_LIB._name).LGBM_BoosterPredictForMatSingleRowFast

    def __call__(self, row: np.ndarray) -> float:
        """Probability for ``row`` (a vector of ``columns`` numbers)."""
        if row.shape != self._shape:
            raise ValueError(f"expected a row of {self.columns} values, got shape {row.shape}")
        self._in[:] = row
        if self._predict(self._config, self._in_ptr, self._len_ref, self._out_ptr) != 0:
            raise LightGBMError(_LIB.LGBM_GetLastError().decode("utf-8"))
        return float(self._out[0])

    def __del__(self) -> None:
        config = getattr(self, "_config", None)
        if config is not None and config.value:
            _LIB.LGBM_FastConfigFree(config)
            self._config = None
