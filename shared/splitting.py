"""The train/test split: a listing's side is a function of its id alone. Pure.

A random split of each dump (train_test_split) draws another test set whenever the row count
changes, so next month's test listings are mostly ones the champion trained on, and the gate
compares a candidate with a champion scored on what it memorised. Hashing the id with a salt
keeps a listing on the same side in every dump: test listings stay out of every model's
training data, and a model's training listings can be told from its rule and the ids alone.
"""

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from shared.schema import MODEL_INPUTS, TARGET

# The model version's tags that record the rule its training split followed.
SALT_TAG, TEST_SIZE_TAG = "split_salt", "split_test_size"


@dataclass(frozen=True)
class Split:
    """The shared train/test split every candidate and the champion are scored on."""

    x_train: pd.DataFrame
    x_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series
    # The nightly prices behind the categories (for models that estimate them too).
    price_train: pd.Series | None = None
    price_test: pd.Series | None = None


def _unit_interval(salt: str, listing_id: object) -> float:
    """A listing's place in [0, 1): the first 8 bytes of SHA-256 of salt and id."""
    digest = hashlib.sha256(f"{salt}:{listing_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class SplitRule:
    """A listing is a test listing when its id's hash under the salt falls below test_size.

    Two rules with the same salt nest: the smaller test side lies inside the larger one.
    """

    salt: str
    test_size: float

    def is_test(self, ids: Iterable[object]) -> np.ndarray:
        """One boolean per id: True for a test listing."""
        places = [_unit_interval(self.salt, _id_text(listing_id)) for listing_id in ids]
        return np.asarray(places, dtype=float) < self.test_size

    def split(self, clean: pd.DataFrame) -> Split:
        """Cleaned listings as model inputs and category, each listing on its side."""
        test = self.is_test(clean["id"])
        x, y, price = clean[["id", *MODEL_INPUTS]], clean[TARGET], clean["price"]
        return Split(x[~test], x[test], y[~test], y[test], price[~test], price[test])

    def tags(self) -> dict[str, str]:
        """The rule as a model version's tags."""
        return {SALT_TAG: self.salt, TEST_SIZE_TAG: repr(self.test_size)}

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> "SplitRule | None":
        """The rule a version recorded; None for one trained before rules were recorded."""
        if SALT_TAG not in tags or TEST_SIZE_TAG not in tags:
            return None
        return cls(tags[SALT_TAG], float(tags[TEST_SIZE_TAG]))


def _id_text(listing_id: object) -> str:
    """An id as text, the same whether it was read as 12345, 12345.0 or "12345"."""
    if isinstance(listing_id, float | np.floating) and float(listing_id).is_integer():
        return str(int(listing_id))
    return str(listing_id)
