"""The one home of file I/O: raw listings in, processed Parquet out, content hashes."""

import hashlib
import json
import os
import pickle
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from shared.cleaning import OPTIONAL_RAW_COLUMNS, REQUIRED_RAW_COLUMNS
from shared.errors import DataError

# Inside Airbnb dumps carry ~75 columns; parsing only the ones cleaning reads makes prep
# several times faster and leaner.
_READ_COLUMNS = frozenset(REQUIRED_RAW_COLUMNS + OPTIONAL_RAW_COLUMNS)

_CHUNK = 1 << 20


def file_md5(path: Path) -> str:
    """md5 of the file's bytes, as DVC records it: the data version."""
    digest = hashlib.md5()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def read_raw_listings(path: Path) -> pd.DataFrame:
    """Read an Inside Airbnb listings file (.csv or .csv.gz); unreadable input is a DataError."""
    if not path.is_file():
        raise DataError(f"raw listings file not found: {path}")
    if path.stat().st_size == 0:
        raise DataError(f"raw listings file is empty: {path}")
    try:
        # Inside Airbnb text columns mix types across rows; read them as text, parse later.
        return pd.read_csv(
            path,
            usecols=lambda column: column in _READ_COLUMNS,
            dtype={"price": "string", "bathrooms_text": "string"},
            low_memory=False,
        )
    except pd.errors.EmptyDataError:
        raise DataError(f"raw listings file is empty: {path}") from None
    except (pd.errors.ParserError, UnicodeDecodeError, EOFError, OSError) as error:
        raise DataError(f"raw listings file is not a readable CSV: {path}: {error}") from None


def processed_path(processed_dir: Path, data_hash: str) -> Path:
    """Where the cleaned dataset of one raw file's content lives."""
    return processed_dir / f"listings-{data_hash}.parquet"


def _write_atomic(path: Path, write: Callable[[str], object]) -> None:
    """Write through a temporary file renamed into place: readers see all of it or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".partial")
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_parquet_atomic(frame: pd.DataFrame, path: Path) -> None:
    """Write a data frame as Parquet, atomically."""
    _write_atomic(path, lambda temporary: frame.to_parquet(temporary, index=False))


def write_json_atomic(document: dict[str, Any], path: Path) -> None:
    """Write a JSON document, atomically."""
    _write_atomic(
        path, lambda temporary: Path(temporary).write_text(json.dumps(document, indent=2))
    )


def read_json(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def read_parquet(path: Path) -> pd.DataFrame:
    """Read a processed dataset written by write_parquet_atomic."""
    return pd.read_parquet(path)


def staged_model_path(staging_dir: Path, run_id: str, candidate: str) -> Path:
    """Where a run's fitted candidate waits to be logged to MLflow."""
    return staging_dir / run_id / f"{candidate}.pkl"


def write_staged_model(model: Any, path: Path) -> int:
    """Keep a fitted model for the run's later stages, atomically; returns its size in bytes.

    Pickle, not skops: the file never leaves the pipeline's own volume and lives only until
    the run has logged it (with skops) to MLflow, where everyone else loads models from.
    """
    data = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    _write_atomic(path, lambda temporary: Path(temporary).write_bytes(data))
    return len(data)


def read_staged_model(path: Path) -> Any:
    """A model written by write_staged_model; a missing one is a DataError naming the file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"staged model not found: {path}") from None
    return pickle.loads(data)  # noqa: S301 - written by this pipeline, see write_staged_model


def remove_staged_models(staging_dir: Path, run_id: str) -> None:
    """Delete a run's staged models once they are logged (or the run failed for good)."""
    shutil.rmtree(staging_dir / run_id, ignore_errors=True)
