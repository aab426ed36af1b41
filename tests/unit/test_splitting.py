import numpy as np
import pandas as pd
import pytest

from shared.schema import MODEL_INPUTS, TARGET
from shared.splitting import SplitRule

RULE = SplitRule("unit", 0.15)


def listings(ids) -> pd.DataFrame:
    """Cleaned-looking rows: only id matters to the split; each price is its listing's id."""
    frame = pd.DataFrame({"id": list(ids)})
    for column in MODEL_INPUTS:
        frame[column] = 0
    frame[TARGET] = "Low"
    frame["price"] = frame["id"].astype(float)
    return frame


def test_a_listing_keeps_its_side_whatever_else_the_dump_holds():
    month = listings(range(10_000))
    next_month = pd.concat([month.iloc[200:], listings(range(10_000, 11_000))]).sample(
        frac=1, random_state=0
    )
    before, after = RULE.split(month), RULE.split(next_month)
    kept = set(month["id"]) & set(next_month["id"])
    assert set(before.x_test["id"]) & kept == set(after.x_test["id"]) & kept
    assert not set(after.x_test["id"]) & set(before.x_train["id"])  # never trained on
    assert (after.price_train == after.x_train["id"]).all()  # each price beside its listing
    assert (after.price_test == after.x_test["id"]).all()


def test_the_test_share_is_test_size():
    share = RULE.is_test(range(100_000)).mean()
    assert share == pytest.approx(0.15, abs=0.005)


def test_an_id_is_the_same_listing_as_int_float_or_text():
    sides = RULE.is_test([12345, 12345.0, "12345", np.int64(12345)])
    assert len(set(sides.tolist())) == 1


def test_rules_of_one_salt_nest_and_another_salt_reshuffles():
    ids = range(20_000)
    small, large = SplitRule("unit", 0.1).is_test(ids), RULE.is_test(ids)
    assert not (small & ~large).any()  # every test listing of the smaller is one of the larger
    other = SplitRule("other", 0.15).is_test(ids)
    assert (other & large).mean() == pytest.approx(0.15 * 0.15, abs=0.005)


def test_a_rule_survives_a_version_s_tags_and_older_versions_have_none():
    assert SplitRule.from_tags(RULE.tags()) == RULE
    assert SplitRule.from_tags({"score": "0.88"}) is None
