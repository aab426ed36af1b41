"""Quality gate: the default grid's champion reaches the targets on the default split."""

import io
import math

import pytest
import skops.io

from shared.model_files import TRUSTED_TYPES

pytestmark = pytest.mark.model


def test_champion_reaches_the_targets(champion, grid_results):
    name, _, metrics = champion
    notebook = grid_results["notebook_rf"][1]
    assert name == "lgbm_price_blend"
    assert metrics["accuracy"] >= 0.69
    assert metrics["roc_auc_ovr"] >= 0.88
    assert metrics["f1_macro"] >= 0.64
    assert metrics["recall_lux"] >= 0.5
    assert metrics["calibration_error"] <= 0.02
    assert metrics["calibration_error"] < grid_results["lgbm_all"][1]["calibration_error"]
    assert metrics["recall_lux"] > notebook["recall_lux"]


def test_champions_price_interval_covers_its_share_of_test_prices(champion, default_split):
    _, _, metrics = champion
    rows = len(default_split.y_test)
    # Three standard errors of a share of 0.8 over the test split's prices (0.018 on 4,300).
    assert metrics["interval_coverage"] == pytest.approx(0.8, abs=3 * math.sqrt(0.16 / rows))


def test_champion_fits_serving(champion):
    _, pipeline, _ = champion
    buffer = io.BytesIO(skops.io.dumps(pipeline))
    assert buffer.getbuffer().nbytes <= 10 * 1024 * 1024
    loaded = skops.io.loads(buffer.getvalue(), trusted=TRUSTED_TYPES)
    assert loaded.named_steps["model"].get_params().get("n_jobs") in (None, 1)
