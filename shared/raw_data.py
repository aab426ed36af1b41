"""Raw listings dumps, named so that a prep worker on any node can read them: a path under the
raw-data folder (in every checkout and image), or an artifact of an MLflow run
(runs:/<run id>/<path>, which `price-category upload-data` creates), fetched through the MLflow
server like everything else stages share."""

import posixpath
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from shared.errors import DataError
from shared.settings import Settings
from shared.tracking import Tracker

RAW_DATA_KIND = "raw-data"
# A run's id, then a relative path of plain names: nothing a page would render as markup.
ARTIFACT = re.compile(r"runs:/([0-9a-f]{32})/([\w.-]+(?:/[\w.-]+)*)", re.ASCII)


def artifact_of(data_path: str) -> tuple[str, str] | None:
    """(run id, path) of a runs:/ name; None for a path under the raw-data folder."""
    found = ARTIFACT.fullmatch(data_path)
    return (found[1], found[2]) if found else None


def artifact_exists(client: MlflowClient, run_id: str, path: str) -> bool:
    """Whether the run holds a file (not a folder) at path. MlflowException if MLflow is
    unreachable or has no such run."""
    folder = posixpath.dirname(path) or None
    return any(
        item.path == path and not item.is_dir for item in client.list_artifacts(run_id, folder)
    )


@contextmanager
def local_raw_file(settings: Settings, data_path: str) -> Iterator[Path]:
    """The dump as a file on this node while the block runs: the file itself, or a copy of
    the artifact downloaded for the block (then deleted)."""
    artifact = artifact_of(data_path)
    if artifact is None:
        yield settings.resolve(Path(data_path))
        return
    client = MlflowClient(settings.mlflow_tracking_uri)
    # Missing is for good (DataError: no retry helps); MLflow unreachable is not, and its
    # error is left to the stage's retries.
    try:
        exists = artifact_exists(client, *artifact)
    except MlflowException as error:
        if error.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        exists = False
    if not exists:
        raise DataError(f"raw listings artifact not found: {data_path}")
    with tempfile.TemporaryDirectory(prefix="raw-") as folder:
        yield Path(client.download_artifacts(*artifact, folder))


def upload(settings: Settings, dump: Path) -> str:
    """Log a local dump to an MLflow run of its own; the runs:/ name a retrain takes."""
    tracker = Tracker(settings)
    run_id = tracker.create_run(RAW_DATA_KIND, dump.name, {"source_file": dump.name})
    try:
        tracker.client.log_artifact(run_id, str(dump))
    except BaseException:
        tracker.end_run(run_id, "FAILED")
        raise
    tracker.end_run(run_id)
    return f"runs:/{run_id}/{dump.name}"
