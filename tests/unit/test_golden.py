"""The committed golden model still gives its recorded answers in-process (to 1e-9): feature
code or library changes that would move served predictions show up here first."""

import pandas as pd

from shared.modeling import probabilities
from tests.golden.fixtures import (
    TOLERANCE,
    expected_answers,
    expected_frame,
    golden_listings,
    golden_model,
)


def test_golden_model_gives_the_recorded_probabilities():
    proba = probabilities(golden_model(), pd.DataFrame(golden_listings()))
    pd.testing.assert_frame_equal(
        proba, expected_frame(), check_exact=False, rtol=0, atol=TOLERANCE
    )
    assert list(proba.idxmax(axis=1)) == [a["price_category"] for a in expected_answers()]
