"""Raw listings dumps, named so that a prep worker on any node can read them: a path under the
raw-data folder (in every checkout and image), an artifact of an MLflow run
(runs:/<run id>/<path>, which `price-category upload-data` creates), fetched through the MLflow
server like everything else stages share, or, where a deployment turns it on
(PRICE_CATEGORY_S3_DUMPS), an object of an S3-compatible store (s3://<bucket>/<key>)."""

import posixpath
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from shared.errors import DataError
from shared.settings import Settings
from shared.tracking import Tracker

RAW_DATA_KIND = "raw-data"
# A run's id, then a relative path of plain names: nothing a page would render as markup.
ARTIFACT = re.compile(r"runs:/([0-9a-f]{32})/([\w.-]+(?:/[\w.-]+)*)", re.ASCII)
# A bucket as S3 names them (lower case, digits, dots, hyphens), then a key of plain names,
# none of them "." or ".." (harmless to S3, but they read as a path out of a folder).
_S3_NAME = r"(?!\.\.?(?:/|$))[\w.-]+"
S3_OBJECT = re.compile(
    rf"s3://([a-z0-9][a-z0-9.-]{{1,61}}[a-z0-9])/({_S3_NAME}(?:/{_S3_NAME})*)", re.ASCII
)
# What S3 answers for a key or bucket that is not there (HEAD requests carry no error body).
S3_NOT_FOUND = {"404", "NoSuchKey", "NoSuchBucket", "NotFound"}


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


def s3_object_of(data_path: str) -> tuple[str, str] | None:
    """(bucket, key) of an s3:// name; None for a malformed one."""
    found = S3_OBJECT.fullmatch(data_path)
    return (found[1], found[2]) if found else None


def s3_client() -> Any:
    """boto3's S3 client, set up by its own environment variables (AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION; AWS_ENDPOINT_URL_S3 for a store other than
    AWS's), with timeouts: a store that does not answer must not hold a request or a stage."""
    import boto3  # imported when a deployment uses it: boto3 takes a while to import
    from botocore.config import Config

    config = Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 3})
    return boto3.client("s3", config=config)


def s3_object_exists(client: Any, bucket: str, key: str) -> bool:
    """Whether the object is there. botocore's errors when the store does not answer, refuses
    the credentials or the request (a 403 says nothing of whether the object exists)."""
    try:
        client.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in S3_NOT_FOUND:
            return False
        raise
    return True


@contextmanager
def local_raw_file(settings: Settings, data_path: str) -> Iterator[Path]:
    """The dump as a file on this node while the block runs: the file itself, or a copy of
    the artifact or S3 object downloaded for the block (then deleted)."""
    if data_path.startswith("s3://"):
        with _downloaded_s3_object(settings, data_path) as path:
            yield path
        return
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


@contextmanager
def _downloaded_s3_object(settings: Settings, data_path: str) -> Iterator[Path]:
    """The object in a temporary folder. Missing, malformed or not enabled is for good
    (DataError); the store not answering is left to the stage's retries."""
    found = s3_object_of(data_path)
    if not settings.s3_dumps or found is None:
        why = "malformed" if settings.s3_dumps else "not enabled (PRICE_CATEGORY_S3_DUMPS)"
        raise DataError(f"s3:// dump {why}: {data_path}")
    bucket, key = found
    client = s3_client()
    if not s3_object_exists(client, bucket, key):
        raise DataError(f"raw listings object not found: {data_path}")
    with tempfile.TemporaryDirectory(prefix="raw-") as folder:
        target = Path(folder) / posixpath.basename(key)
        client.download_file(bucket, key, str(target))
        yield target


def upload(settings: Settings, dump: Path) -> str:
    """Log a local dump to an MLflow run of its own; the runs:/ name a retrain takes."""
    tracker = Tracker(settings)
    with tracker.complete_run(RAW_DATA_KIND, dump.name, {"source_file": dump.name}) as run_id:
        tracker.client.log_artifact(run_id, str(dump))
    return f"runs:/{run_id}/{dump.name}"
