"""Fitted candidates waiting to be logged: pickles in their pipeline run's MLflow artifacts,
loaded only if they are the bytes their training job staged.

Stages on different machines share no disk, so a fitted candidate travels from training to
select and archive through MLflow's artifact store (proxied by the MLflow server: no storage
credentials on the workers), under the pipeline run's "staged/" folder, which is deleted once
the models are logged or the run has failed. Pickle is the quickest format to write and read
(skops takes seconds on the notebook's 500-tree forest), but loading a pickle runs code, and
MLflow has no login: so training records each file's SHA-256 in the run's status, in Redis
(password-protected), and a file whose bytes do not match is refused before it is unpickled.
"""

import hashlib
import pickle
import tempfile
from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient

from shared.errors import DataError
from shared.tracking import delete_artifacts

STAGED_FOLDER = "staged"


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class StagedModels:
    """The staged models of pipeline runs, by the runs' MLflow parent run."""

    def __init__(self, client: MlflowClient) -> None:
        self.client = client

    def put(self, parent_run_id: str, candidate: str, model: Any) -> tuple[str, int]:
        """Stage a fitted model; its SHA-256 (to record where only the pipeline writes) and
        size in bytes."""
        data = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"{candidate}.pkl"
            path.write_bytes(data)
            self.client.log_artifact(parent_run_id, str(path), STAGED_FOLDER)
        return digest_of(data), len(data)

    def get(self, parent_run_id: str, candidate: str, digest: str) -> Any:
        """A staged model, if its bytes are those its training staged; DataError otherwise."""
        # Missing is for good (DataError: no retry helps); MLflow unreachable is not, and its
        # error is left to the stage's retries.
        if not self.has(parent_run_id, candidate):
            raise DataError(f"staged model of {candidate} not found in run {parent_run_id}")
        with tempfile.TemporaryDirectory() as folder:
            fetched = self.client.download_artifacts(
                parent_run_id, f"{STAGED_FOLDER}/{candidate}.pkl", folder
            )
            data = Path(fetched).read_bytes()
        if digest_of(data) != digest:
            raise DataError(
                f"staged model of {candidate} is not the one its training staged "
                "(its SHA-256 differs): refused, not loaded"
            )
        return pickle.loads(data)  # noqa: S301 - the bytes training wrote, checked above

    def has(self, parent_run_id: str, candidate: str) -> bool:
        staged = self.client.list_artifacts(parent_run_id, STAGED_FOLDER)
        return f"{STAGED_FOLDER}/{candidate}.pkl" in {item.path for item in staged}

    def remove(self, parent_run_id: str) -> None:
        """Delete a run's staged models (logged, or never to be)."""
        delete_artifacts(self.client, parent_run_id, STAGED_FOLDER)
