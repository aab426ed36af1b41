"""Fitted candidates staged in MLflow (no disk shared between stages), on a real server: read
back only if they are the bytes training staged, and deleted with their run's folder."""

import pickle
import tempfile
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from shared.errors import DataError
from shared.staged_models import STAGED_FOLDER, StagedModels

MARKER = Path(tempfile.gettempdir()) / "staged-model-payload-ran"


class Payload:
    """What a writer with MLflow access but not Redis might stage: code run on unpickling."""

    def __reduce__(self):
        return (MARKER.touch, ())


def _parent_run(stack) -> str:
    client = MlflowClient(stack.settings.mlflow_tracking_uri)
    experiment = client.get_experiment_by_name("staged-models-test") or client.get_experiment(
        client.create_experiment("staged-models-test")
    )
    return client.create_run(experiment.experiment_id).info.run_id


def test_a_staged_model_replaced_in_mlflow_is_refused_unloaded(stack, tmp_path):
    MARKER.unlink(missing_ok=True)
    staged = StagedModels(MlflowClient(stack.settings.mlflow_tracking_uri))
    parent = _parent_run(stack)
    digest, size = staged.put(parent, "rf", {"trees": [1, 2, 3]})
    assert size > 0 and staged.has(parent, "rf")
    assert staged.get(parent, "rf", digest) == {"trees": [1, 2, 3]}

    forged = tmp_path / "rf.pkl"
    forged.write_bytes(pickle.dumps(Payload()))
    staged.client.log_artifact(parent, str(forged), STAGED_FOLDER)  # same name: replaced
    with pytest.raises(DataError, match="SHA-256 differs"):
        staged.get(parent, "rf", digest)
    assert not MARKER.exists()  # refused before anything was unpickled


def test_a_run_s_staged_models_are_deleted_together_and_only_its_own(stack):
    staged = StagedModels(MlflowClient(stack.settings.mlflow_tracking_uri))
    first, second = _parent_run(stack), _parent_run(stack)
    for name in ("rf", "lgbm"):
        staged.put(first, name, {"model": name})
    kept, _ = staged.put(second, "rf", {"model": "second"})
    staged.client.log_text(first, "the run's report stays", "report/candidates.md")

    staged.remove(first)
    assert not staged.has(first, "rf") and not staged.has(first, "lgbm")
    assert [a.path for a in staged.client.list_artifacts(first)] == ["report"]
    assert staged.get(second, "rf", kept) == {"model": "second"}  # another run's stay
    with pytest.raises(DataError, match="staged model of rf not found"):
        staged.get(first, "rf", kept)
    staged.remove(first)  # removing again (a retried clean-up) is harmless
