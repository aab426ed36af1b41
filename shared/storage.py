"""The one home of file I/O: raw listings in, processed Parquet out, content hashes."""

import hashlib
import json
import os
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
    return _file_digest(path, hashlib.md5())


def file_sha256(path: Path) -> str:
    """SHA-256 of the file's bytes: what a stage checks a file another stage wrote against."""
    return _file_digest(path, hashlib.sha256())


def _file_digest(path: Path, digest: "hashlib._Hash") -> str:
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


def move_into_place(source: Path, path: Path) -> None:
    """Rename a finished file (on the same file system) to its name: all of it or nothing."""
    os.replace(source, path)


def write_parquet_atomic(frame: pd.DataFrame, path: Path) -> None:
    """Write a data frame as Parquet, atomically."""
    _write_atomic(path, lambda temporary: frame.to_parquet(temporary, index=False))


def write_bytes_atomic(data: bytes, path: Path) -> None:
    """Write bytes, atomically."""
    _write_atomic(path, lambda temporary: Path(temporary).write_bytes(data))


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
