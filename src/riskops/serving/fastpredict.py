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
from lightgbm.basic import _C_API_DTYPE_FLOAT64, _C_API_PREDICT_NORMAL, _LIB, _c_str, _safe_call


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

    def __call__(self, row: np.ndarray) -> float:
        """Probability for ``row`` (a C-contiguous float64 vector of ``columns`` values)."""
        if row.dtype != np.float64 or row.shape != (self.columns,) or not row.flags.c_contiguous:
            raise ValueError(f"expected a contiguous float64 row of {self.columns} values")
        _safe_call(
            _LIB.LGBM_BoosterPredictForMatSingleRowFast(
                self._config,
                row.ctypes.data_as(ctypes.c_void_p),
                ctypes.byref(self._len),
                self._out_ptr,
            )
        )
        return float(self._out[0])

    def __del__(self) -> None:
        config = getattr(self, "_config", None)
        if config is not None and config.value:
            _LIB.LGBM_FastConfigFree(config)
            self._config = None
