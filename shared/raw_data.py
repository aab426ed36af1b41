"""Raw listings dumps, named by a run's data_path so that a prep worker on any node can read
them: a path under the raw-data folder (in every checkout and image), an artifact of an MLflow
run (runs:/<run id>/<path>, which `price-category upload-data` creates), fetched through the
MLflow server like everything else stages share, or, where a deployment turns it on
(PRICE_CATEGORY_S3_DUMPS), an object of an S3-compatible store (s3://<bucket>/<key>).

One parser and one check serve the gateway, which refuses a bad name before a run starts
(`requested_source`), and prep, which reads the dump (`local_raw_file`): a name means the same
thing, and is refused for the same reason, in both. A file an API client names must lie under
the raw-data folder; prep reads the file a run names (runs launched inside the deployment, by
the monitor or by tests, may name any).
"""

import posixpath
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from shared.errors import DataError
from shared.settings import Settings
from shared.tracking import Tracker

RAW_DATA_KIND = "raw-data"
# Names of plain characters only, none of them "." or ".." (harmless to S3 and MLflow, but
# they read as a path out of a folder): a data_path's text reaches RQ jobs, and their pages
# in rq-dashboard, which would render markup.
_NAME = r"(?!\.\.?(?:/|$))[\w.-]+"
_PLAIN_PATH = rf"{_NAME}(?:/{_NAME})*"
# A run's id, then a relative path of plain names.
ARTIFACT = re.compile(rf"runs:/([0-9a-f]{{32}})/({_PLAIN_PATH})", re.ASCII)
# A bucket as S3 names them (lower case, digits, dots, hyphens), then a key of plain names.
S3_OBJECT = re.compile(rf"s3://([a-z0-9][a-z0-9.-]{{1,61}}[a-z0-9])/({_PLAIN_PATH})", re.ASCII)
# What a file's data_path may hold.
SAFE_PATH = re.compile(r"[\w./-]+", re.ASCII)
# What S3 answers for a key or bucket that is not there (HEAD requests carry no error body).
S3_NOT_FOUND = {"404", "NoSuchKey", "NoSuchBucket", "NotFound"}


class DataPathError(DataError):
    """A data_path that names nothing usable, for good (no retry helps); `why` is the short
    reason an API answer gives beside the field."""

    def __init__(self, message: str, why: str) -> None:
        super().__init__(message)
        self.why = why


class StoreUnavailable(Exception):  # noqa: N818 - said as what it is, like ConnectionError
    """The store holding the dump ("mlflow" or "s3") did not answer: try again later."""

    def __init__(self, store: str, message: str) -> None:
        super().__init__(message)
        self.store = store


@dataclass(frozen=True)
class DataSource:
    """A parsed data_path. name is what runs record: a file's path as given (the gateway gives
    it relative to the project), or the runs:/ or s3:// name; where is (run id, path) of an
    artifact or (bucket, key) of an object."""

    scheme: Literal["file", "runs", "s3"]
    name: str
    where: tuple[str, str] = ("", "")

    @classmethod
    def parse(cls, data_path: str, settings: Settings) -> "DataSource":
        """The source a data_path names; DataPathError when its form is wrong."""
        if data_path.startswith("runs:/"):
            found = ARTIFACT.fullmatch(data_path)
            if found is None:
                raise DataPathError(
                    "an MLflow artifact is named runs:/<32-character run id>/<path of plain "
                    f"names>, not {data_path!r}",
                    "not a runs:/<run id>/<path> name",
                )
            return cls("runs", data_path, (found[1], found[2]))
        if data_path.startswith("s3://"):
            if not settings.s3_dumps:
                raise DataPathError(
                    "s3:// dumps are not enabled here (PRICE_CATEGORY_S3_DUMPS)",
                    "s3:// not enabled",
                )
            found = S3_OBJECT.fullmatch(data_path)
            if found is None:
                raise DataPathError(
                    f"an S3 object is named s3://<bucket>/<key of plain names>, not {data_path!r}",
                    "not an s3://<bucket>/<key> name",
                )
            return cls("s3", data_path, (found[1], found[2]))
        return cls("file", data_path)

    def check_readable(self, settings: Settings) -> None:
        """DataPathError when the dump is not there (or the store refuses it);
        StoreUnavailable when the store does not answer."""
        if self.scheme == "runs":
            if not _artifact_exists(settings, *self.where):
                raise DataPathError(f"no such artifact: {self.name}", "artifact not found")
        elif self.scheme == "s3":
            if not _s3_object_exists(self.name, *self.where):
                raise DataPathError(f"no such object: {self.name}", "object not found")
        elif not self.path(settings).is_file():
            raise DataPathError(f"no such file: {self.name}", "file not found")

    def path(self, settings: Settings) -> Path:
        """A file's place on this node."""
        return settings.resolve(Path(self.name))


def requested_source(settings: Settings, asked: str | None) -> DataSource:
    """The dump an API client names (None: the default one), checked to be there: a file must
    lie under the raw-data folder, named relative to the project. DataPathError,
    StoreUnavailable."""
    named = str(settings.default_data_path) if asked is None else asked
    source = DataSource.parse(named, settings)
    if source.scheme == "file":
        source = DataSource("file", _file_under_raw_data(settings, source.name))
    source.check_readable(settings)
    return source


def _file_under_raw_data(settings: Settings, asked: str) -> str:
    """The path relative to the project of a file under the raw-data folder."""
    if not SAFE_PATH.fullmatch(asked):
        raise DataPathError(
            "data_path may hold only letters, digits, '.', '_', '-' and '/'",
            "characters outside [A-Za-z0-9._/-]",
        )
    raw_dir = settings.resolve(settings.raw_data_dir).resolve()
    try:
        resolved = settings.resolve(Path(asked)).resolve()
        resolved.is_file()  # a name too long for the file system raises here
    except (ValueError, OSError) as error:  # a NUL byte, a name too long for the file system
        # The reason alone: an OSError's text names the absolute path.
        why = error.strerror if isinstance(error, OSError) else str(error)
        raise DataPathError(f"data_path is not a usable path: {why}", "not a usable path") from None
    if not resolved.is_relative_to(raw_dir):
        raise DataPathError(
            f"data_path must be a file under {settings.raw_data_dir}/",
            "outside the raw data folder",
        )
    return str(resolved.relative_to(settings.project_dir.resolve()))


@contextmanager
def local_raw_file(settings: Settings, data_path: str) -> Iterator[Path]:
    """The dump a run names as a file on this node while the block runs: the file itself, or a
    copy of the artifact or S3 object downloaded for the block (then deleted). Missing or
    malformed is for good (DataPathError, a DataError); a store that does not answer
    (StoreUnavailable) is left to the stage's retries."""
    source = DataSource.parse(data_path, settings)
    source.check_readable(settings)
    if source.scheme == "file":
        yield source.path(settings)
        return
    with tempfile.TemporaryDirectory(prefix="raw-") as folder:
        if source.scheme == "runs":
            client = MlflowClient(settings.mlflow_tracking_uri)
            yield Path(client.download_artifacts(*source.where, folder))
        else:
            bucket, key = source.where
            target = Path(folder) / posixpath.basename(key)
            s3_client().download_file(bucket, key, str(target))
            yield target


def _artifact_exists(settings: Settings, run_id: str, path: str) -> bool:
    """Whether the run holds a file (not a folder) at path."""
    client = MlflowClient(settings.mlflow_tracking_uri)
    folder = posixpath.dirname(path) or None
    try:
        listed = client.list_artifacts(run_id, folder)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return False
        raise StoreUnavailable("mlflow", f"MLflow did not answer: {error.message}") from None
    return any(item.path == path and not item.is_dir for item in listed)


def s3_client() -> Any:
    """boto3's S3 client, set up by its own environment variables (AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION; AWS_ENDPOINT_URL_S3 for a store other than
    AWS's), with timeouts: a store that does not answer must not hold a request or a stage."""
    import boto3  # imported when a deployment uses it: boto3 takes a while to import
    from botocore.config import Config

    config = Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 3})
    return boto3.client("s3", config=config)


def _s3_object_exists(name: str, bucket: str, key: str) -> bool:
    """Whether the object is there; a refusal (403: says nothing of whether it exists) is a
    DataPathError, a store that does not answer or fails StoreUnavailable."""
    unavailable = StoreUnavailable("s3", "the S3 store did not answer")
    try:
        s3_client().head_object(Bucket=bucket, Key=key)
    except ClientError as error:  # the store answered: not there, a refusal, or its failure
        code = error.response.get("Error", {}).get("Code")
        if code in S3_NOT_FOUND:
            return False
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500)
        if status >= 500:
            raise unavailable from None
        raise DataPathError(
            f"the S3 store refused {name}: {code or status}", "object not readable"
        ) from None
    except BotoCoreError:  # not answering, or no credentials configured
        raise unavailable from None
    return True


def upload(settings: Settings, dump: Path) -> str:
    """Log a local dump to an MLflow run of its own; the runs:/ name a retrain takes."""
    tracker = Tracker(settings)
    with tracker.complete_run(RAW_DATA_KIND, dump.name, {"source_file": dump.name}) as run_id:
        tracker.client.log_artifact(run_id, str(dump))
    return f"runs:/{run_id}/{dump.name}"
