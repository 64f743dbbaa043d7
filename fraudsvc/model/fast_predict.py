"""One-row predictions through LightGBM's single-row C API, without `Booster.predict`'s overhead.

`Booster.predict` on one row re-checks its arguments, converts the row, builds a predictor and
parses its parameter string on every call: about 60 µs of the 70 µs a score costs on the bench
model (144 trees, 25 features). LightGBM's `LGBM_BoosterPredictForMatSingleRowFastInit` does
that setup once and `LGBM_BoosterPredictForMatSingleRowFast` then scores a row in about 10 µs.
Both paths run the same C++ `Predictor` on the same dense row (NaN kept as missing), so their
floats are the same bit for bit; tests/unit/test_fast_predict.py holds `Booster.predict` as
the oracle.

A `RowPredictor` owns one FastConfig handle (one booster, one prediction type) and a row and
result buffer of its own; `fast_paths` makes the two the scoring path needs, on a private copy
of the booster (why: see there). A lock keeps two threads from sharing the buffers (the web
process scores on its event loop only, but a bundle is loaded in a thread and the worker's
threads could score one day); an uncontended lock costs about 0.1 µs. The handle is freed when
the predictor is collected with its bundle (the ModelHolder keeps the versions it loaded in
its cache, so today that is at exit), or by `close()`.

LightGBM builds without these functions (older ones) get `None` from `fast_paths`, and the
caller keeps `Booster.predict`; that is logged once per process.
"""

from __future__ import annotations

import ctypes
import threading
import weakref
from dataclasses import dataclass
from typing import Any, Final, cast

import lightgbm as lgb
import numpy as np
from lightgbm.libpath import _LIB
from loguru import logger

# LightGBM's C API constants (c_api.h)
PREDICT_NORMAL: Final = 0
"""The objective's output: the probability for `binary`, as `Booster.predict` returns."""
PREDICT_CONTRIB: Final = 3
"""Each feature's contribution to the raw score, then the expected value (`pred_contrib`)."""
_DTYPE_FLOAT64: Final = 1
PARAMETERS: Final = b"num_threads=1"
"""What `Booster.predict(row, num_threads=1)` passes down: the scoring path's own call."""

_INIT = "LGBM_BoosterPredictForMatSingleRowFastInit"
_PREDICT = "LGBM_BoosterPredictForMatSingleRowFast"
_FREE = "LGBM_FastConfigFree"

_warned = False


class FastPredictError(RuntimeError):
    """LightGBM refused a single-row prediction (its message says why)."""


def _last_error() -> str:
    message: bytes = _LIB.LGBM_GetLastError()  # restype set by lightgbm to c_char_p
    return message.decode("utf-8", "replace")


def available() -> bool:
    """Whether the loaded LightGBM library has the single-row fast path."""
    return all(hasattr(_LIB, name) for name in (_INIT, _PREDICT, _FREE))


def _free(free: Any, handle: ctypes.c_void_p, booster: lgb.Booster) -> None:
    """Release a FastConfig. `booster` is only held so that it outlives the handle that points
    into it, whatever order the collector finalizes them in."""
    del booster
    free(handle)


class RowPredictor:
    """Predictions of one row at a time, of one type, for one booster."""

    def __init__(self, booster: lgb.Booster, predict_type: int) -> None:
        """`booster` must see no prediction with another iteration window than
        `Booster.predict`'s default (`fast_paths` gives it a private copy)."""
        self.predict_type = predict_type
        self.num_features = int(booster.num_feature())
        # Booster.predict's num_iteration=None with start_iteration=0 means best_iteration
        # (-1, every tree, for a booster read from a file)
        self.num_iteration = int(booster.best_iteration)
        handle = ctypes.c_void_p()
        status = getattr(_LIB, _INIT)(
            booster._handle,
            ctypes.c_int(predict_type),
            ctypes.c_int(0),
            ctypes.c_int(self.num_iteration),
            ctypes.c_int(_DTYPE_FLOAT64),
            ctypes.c_int32(self.num_features),
            ctypes.c_char_p(PARAMETERS),
            ctypes.byref(handle),
        )
        if status != 0:
            raise FastPredictError(_last_error())
        self._handle = handle
        self._finalizer = weakref.finalize(self, _free, getattr(_LIB, _FREE), handle, booster)
        size = ctypes.c_int64(0)
        status = _LIB.LGBM_BoosterCalcNumPredict(
            booster._handle,
            ctypes.c_int(1),
            ctypes.c_int(predict_type),
            ctypes.c_int(0),
            ctypes.c_int(self.num_iteration),
            ctypes.byref(size),
        )
        if status != 0:
            self._finalizer()
            raise FastPredictError(_last_error())
        self.size = size.value
        """Outputs per row: 1 for a binary score, features + 1 for contributions."""
        self._row = (ctypes.c_double * self.num_features)()
        self._out = (ctypes.c_double * self.size)()
        self._out_array = np.ctypeslib.as_array(self._out)
        self._out_len = ctypes.c_int64(0)
        self._out_len_ref = ctypes.byref(self._out_len)
        self._predict = getattr(_LIB, _PREDICT)
        self._lock = threading.Lock()

    def _run(self, vector: list[float]) -> None:
        """Score `vector` into `self._out`; the caller holds the lock."""
        if not self._finalizer.alive:
            raise FastPredictError("this predictor was closed")
        # a ctypes array takes a list of floats element by element in C (0.7 µs for 25), and a
        # wrong length raises ValueError as Booster.predict's shape check does
        self._row[:] = cast("list[ctypes.c_double | float]", vector)  # the stub's element type
        if self._predict(self._handle, self._row, self._out_len_ref, self._out) != 0:
            raise FastPredictError(_last_error())

    def value(self, vector: list[float]) -> float:
        """The single output (PREDICT_NORMAL: the score)."""
        with self._lock:
            self._run(vector)
            return self._out[0]

    def values(self, vector: list[float]) -> np.ndarray:
        """Every output of the row, as a new array (PREDICT_CONTRIB: contributions, then bias)."""
        with self._lock:
            self._run(vector)
            return self._out_array.copy()

    def close(self) -> None:
        """Free the handle now (also done when the predictor is collected)."""
        with self._lock:
            self._finalizer()


@dataclass(frozen=True)
class FastPaths:
    """The single-row predictors of one booster: the score, and contributions for reasons."""

    score: RowPredictor
    contrib: RowPredictor


def private_copy(booster: lgb.Booster) -> lgb.Booster:
    """A booster of the fast predictors' own, holding the trees `Booster.predict` uses by
    default (those up to `best_iteration`, when early stopping set one)."""
    return lgb.Booster(model_str=booster.model_to_string())


def fast_paths(booster: lgb.Booster) -> FastPaths | None:
    """Fast predictors on a private copy of `booster`, or None (logged once) if this LightGBM
    cannot make them: the caller then uses `Booster.predict`.

    Why a copy: a FastConfig does not keep its iteration window. Building any predictor on a
    booster, as every `Booster.predict` call does, sets the booster's window (LightGBM issue
    6142), and the FastConfigs made before then score with it: after a
    `booster.predict(x, num_iteration=3)`, the fast score is the 3-tree score (measured; the
    best-iteration test in tests/unit/test_fast_predict.py fails without the copy).
    Nothing predicts on the private copy but these predictors, all with the same window. The
    copy costs about 15 ms at load (model_to_string and parse, bench model) and its memory."""
    global _warned
    why: str
    if not available():
        why = f"the LightGBM library lacks {_INIT}"
    else:
        try:
            own = private_copy(booster)
            return FastPaths(
                score=RowPredictor(own, PREDICT_NORMAL), contrib=RowPredictor(own, PREDICT_CONTRIB)
            )
        except (FastPredictError, lgb.basic.LightGBMError) as exc:
            why = str(exc)
    if not _warned:
        _warned = True
        logger.warning("single-row fast prediction unavailable, using Booster.predict: {}", why)
    return None
