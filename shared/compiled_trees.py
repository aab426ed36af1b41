"""A pipeline's LightGBM trees compiled to native code (TL2cgen), predicting as LightGBM does.

Compiled, the price blend's trees (as the default grid trains them on the shipped dump) predict
10,000 listings on one thread in 82 ms instead of LightGBM's 187 (its classifier, 320 trees)
and 62 ms instead of 144 (its regressor, 300 trees), with the same outputs to the last bit;
one listing in 9 us instead of 26 (each of the two: a few rows skip TL2cgen's predictor).
Compiling takes seconds of gcc, so the gateway serves the plain trees meanwhile and uses
the compiled ones only once they answer the challenge's example and a fixed sample exactly as
the plain ones do (services.gateway.champion).

The library is built in a temporary folder of the process that loads it and deleted once
loaded: native code is never read from a place another process could have written to.
"""

import copy
import ctypes
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import tl2cgen
import treelite
from lightgbm import LGBMClassifier
from sklearn.pipeline import Pipeline

from shared.blend import PriceBlend
from shared.contracts import CHALLENGE_EXAMPLE
from shared.modeling import predict_matrix
from shared.schema import (
    LATITUDE_RANGE,
    LONGITUDE_RANGE,
    NEIGHBOURHOODS,
    OPTIONAL_FLAGS,
    REQUIRED_FLAGS,
    ROOM_TYPES,
)

log = logging.getLogger(__name__)

# Largest difference allowed between a compiled pipeline's outputs (probabilities, prices) and
# the plain one's on the proving sample.
TOLERANCE = 1e-9
SAMPLE_SIZE = 1_000
# Rows predicted one by one through the library's own function, below TL2cgen's predictor:
# up to this many, its fixed cost per call is more than the rows' own. Little-endian only
# (_predict_rows writes a missing value's int into the double's low half).
ROW_BY_ROW = 16 if sys.byteorder == "little" else 0


class CompiledBooster:
    """A LightGBM booster's trees as a native library: `predict` answers as Booster.predict
    does (probabilities for a classifier, the value for a regressor)."""

    def __init__(self, booster: lightgbm.Booster, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        library = folder / "trees.so"
        tl2cgen.export_lib(
            treelite.frontend.from_lightgbm(booster),
            toolchain="gcc",
            libpath=str(library),
            # 8 small files: gcc's memory stays small. Quantized: each feature's thresholds
            # become integer ranks, compared as ints (1.9x faster, identical outputs).
            params={"parallel_comp": 8, "quantize": 1},
            nthread=1,
            verbose=False,
        )
        self.classes = booster.num_model_per_iteration()
        # All loaded now: the library is deleted with its folder (a loaded one stays mapped).
        self._predictors = {
            threads: tl2cgen.Predictor(str(library), nthread=threads)
            for threads in {1, os.cpu_count() or 1}
        }
        # The library's own function for one row, called directly for a few rows: TL2cgen's
        # predictor builds a matrix and a thread pool's task per call (17 us of the 26 one
        # listing took).
        self._predict_row = ctypes.CDLL(str(library)).predict
        self._predict_row.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
        self._predict_row.restype = None

    def predict(self, x: np.ndarray, num_threads: int = 1) -> np.ndarray:
        if len(x) <= ROW_BY_ROW:
            out = self._predict_rows(x)
        else:
            predictor = self._predictors.get(num_threads) or self._predictors[max(self._predictors)]
            out = np.asarray(predictor.predict(tl2cgen.DMatrix(x, dtype="float64")))
        return out.reshape(len(x), self.classes) if self.classes > 1 else out.reshape(len(x))

    def _predict_rows(self, x: np.ndarray) -> np.ndarray:
        """Each row through the library's predict(union Entry* row, int margin, double* out).

        An Entry is 8 bytes: the feature's double, or (its first 4 bytes, as an int) -1 for
        missing, as TL2cgen's predictor fills it for a NaN. The function writes its row (each
        value becomes its quantized rank), hence the copy."""
        entries = np.array(x, dtype=np.float64, order="C")  # a copy, always
        entries.view(np.int32)[:, 0::2][np.isnan(entries)] = -1  # little-endian: the low half
        out = np.zeros((len(x), self.classes))  # the function adds each tree to it
        row_bytes, out_bytes = entries.strides[0], out.strides[0]
        at, into = entries.ctypes.data, out.ctypes.data
        for row in range(len(x)):
            self._predict_row(at + row * row_bytes, 0, into + row * out_bytes)
        return out


def compile_pipeline(pipeline: Pipeline) -> Pipeline | None:
    """A twin of pipeline whose LightGBM boosters are compiled (None for a model with none),
    sharing everything else with it. Raises what gcc or TL2cgen raise."""
    model = pipeline.named_steps["model"]
    with tempfile.TemporaryDirectory(prefix="compiled-trees-") as folder:
        if isinstance(model, PriceBlend):
            twin = copy.copy(model)
            twin.classifier_ = _compiled_twin(model.classifier_, Path(folder, "classifier"))
            twin.regressor_ = _compiled_twin(model.regressor_, Path(folder, "regressor"))
        elif isinstance(model, LGBMClassifier):
            twin = _compiled_twin(model, Path(folder))
        else:
            return None
    return Pipeline([*pipeline.steps[:-1], ("model", twin)])


def _compiled_twin(estimator: Any, folder: Path) -> Any:
    """A shallow copy of a fitted LightGBM estimator whose booster_ is compiled."""
    twin = copy.copy(estimator)
    twin._Booster = CompiledBooster(estimator.booster_, folder)  # what booster_ returns
    return twin


def difference(plain: Pipeline, compiled: Pipeline, listings: list[dict[str, Any]]) -> float:
    """The largest absolute difference between the two pipelines' probabilities and prices,
    the compiled one asked both ways it predicts: all the listings at once, and a few at a
    time (row by row)."""
    expected = _outputs(plain, listings)
    step = ROW_BY_ROW or len(listings)
    few_at_a_time = [
        _outputs(compiled, listings[at : at + step]) for at in range(0, len(listings), step)
    ]
    gaps = []
    for answered in (_outputs(compiled, listings), np.vstack(few_at_a_time)):
        if answered.shape != expected.shape:  # prices from one of them only
            return float("inf")
        gaps.append(float(np.abs(expected - answered).max()))
    return max(gaps)


def _outputs(pipeline: Pipeline, listings: list[dict[str, Any]]) -> np.ndarray:
    """Probabilities, then the estimated price and interval of a model that gives them."""
    proba, prices = predict_matrix(pipeline, listings)
    return proba if prices is None else np.hstack([proba, prices])


def proving_sample(size: int = SAMPLE_SIZE, seed: int = 0) -> list[dict[str, Any]]:
    """The challenge's example and size listings drawn over the contract's ranges (a fixed
    seed: the same sample every time), a third of them leaving the optional fields out."""
    rng = np.random.default_rng(seed)
    listings = [dict(CHALLENGE_EXAMPLE)]
    for i in range(size):
        listing = {
            "id": i,
            "accommodates": int(rng.integers(1, 17)),
            "room_type": str(rng.choice(ROOM_TYPES)),
            "beds": int(rng.integers(0, 9)),
            "bedrooms": int(rng.integers(0, 7)),
            "bathrooms": float(rng.integers(0, 9)) / 2,
            "neighbourhood": str(rng.choice(NEIGHBOURHOODS)),
            "latitude": float(rng.uniform(*LATITUDE_RANGE)),
            "longitude": float(rng.uniform(*LONGITUDE_RANGE)),
            **{flag: int(rng.integers(0, 2)) for flag in REQUIRED_FLAGS},
        }
        if i % 3:
            listing |= {flag: int(rng.integers(0, 2)) for flag in OPTIONAL_FLAGS}
            listing["property_type"] = str(
                rng.choice(["Entire rental unit", "Private room in home", "Boat", "Castle"])
            )
        listings.append(listing)
    return listings


def proven_compiled(pipeline: Pipeline) -> Pipeline | None:
    """The compiled twin of pipeline if it answers the proving sample as pipeline does (within
    TOLERANCE); None when there is nothing to compile, or it does not (said in the log)."""
    compiled = compile_pipeline(pipeline)
    if compiled is None:
        return None
    gap = difference(pipeline, compiled, proving_sample())
    if not gap <= TOLERANCE:
        log.warning("compiled trees differ from LightGBM's by %g: not used", gap)
        return None
    return compiled
