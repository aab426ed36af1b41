"""Quality gate: the default grid's champion reaches the targets on the default split."""

import io

import pytest
import skops.io

from shared.model_files import TRUSTED_TYPES

pytestmark = pytest.mark.model


def test_champion_reaches_the_targets(champion, grid_results):
    name, _, metrics = champion
    notebook = grid_results["notebook_rf"][1]
    assert name != "notebook_rf"
    assert metrics["accuracy"] >= 0.69
    assert metrics["roc_auc_ovr"] >= 0.875
    assert metrics["f1_macro"] >= 0.62
    assert metrics["recall_lux"] > notebook["recall_lux"]


def test_champion_fits_serving(champion):
    _, pipeline, _ = champion
    buffer = io.BytesIO(skops.io.dumps(pipeline))
    assert buffer.getbuffer().nbytes <= 10 * 1024 * 1024
    loaded = skops.io.loads(buffer.getvalue(), trusted=TRUSTED_TYPES)
    assert loaded.named_steps["model"].get_params().get("n_jobs") in (None, 1)
