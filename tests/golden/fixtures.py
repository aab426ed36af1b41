"""The committed golden model, listings and expected answers (see make_golden.py)."""

import json
from pathlib import Path

import pandas as pd
import skops.io
from sklearn.pipeline import Pipeline

from shared.model_files import TRUSTED_TYPES

FOLDER = Path(__file__).parent
TOLERANCE = 1e-9


def golden_model() -> Pipeline:
    return skops.io.load(FOLDER / "model.skops", trusted=TRUSTED_TYPES)


def golden_listings() -> list[dict]:
    return list(json.loads((FOLDER / "listings.json").read_text()))


def expected_answers() -> list[dict]:
    return list(json.loads((FOLDER / "expected.json").read_text()))


def expected_frame() -> pd.DataFrame:
    """Expected probabilities, one row per golden listing, columns Low..Lux."""
    return pd.DataFrame([answer["probabilities"] for answer in expected_answers()])
