"""The committed golden models, listings and expected answers (see make_golden.py).

Two models: a small LightGBM pipeline ("lightgbm") and a small classifier-regressor blend
("price_blend"), which answers estimated prices and intervals too."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import skops.io
from sklearn.pipeline import Pipeline

from shared.model_files import TRUSTED_TYPES

FOLDER = Path(__file__).parent
TOLERANCE = 1e-9
# Each golden model's files: model<suffix>.skops and expected<suffix>.json.
KINDS = {"lightgbm": "", "price_blend": "_blend"}


def golden_model(kind: str = "lightgbm") -> Pipeline:
    return skops.io.load(FOLDER / f"model{KINDS[kind]}.skops", trusted=TRUSTED_TYPES)


def golden_listings() -> list[dict]:
    return list(json.loads((FOLDER / "listings.json").read_text()))


def expected_answers(kind: str = "lightgbm") -> list[dict]:
    return list(json.loads((FOLDER / f"expected{KINDS[kind]}.json").read_text()))


def expected_frame(kind: str = "lightgbm") -> pd.DataFrame:
    """Expected probabilities, one row per golden listing, columns Low..Lux."""
    return pd.DataFrame([answer["probabilities"] for answer in expected_answers(kind)])


def expected_prices(kind: str) -> np.ndarray | None:
    """Expected estimated price, interval low and high per listing; None for a model that
    estimates no prices."""
    answers = expected_answers(kind)
    if "estimated_price" not in answers[0]:
        return None
    return np.array([[a["estimated_price"], *a["price_interval"]] for a in answers])
