"""Raw listing files broken the ways real inputs break, written for the fuzz tests."""

import gzip
import random
from collections.abc import Callable
from pathlib import Path

from tests.unit.listings import raw_frame


def _csv(frame_rows: list[dict] | None = None, **options: str) -> str:
    return raw_frame(*(frame_rows or [{}, {}])).to_csv(index=False, **options)


def truncated_gzip(path: Path) -> None:
    whole = gzip.compress(_csv([{} for _ in range(200)]).encode())
    path.write_bytes(whole[: len(whole) // 2])


def wrong_delimiter(path: Path) -> None:
    path.write_text(_csv(sep=";"))


def binary_garbage(path: Path) -> None:
    path.write_bytes(random.Random(0).randbytes(4096))


def zero_bytes(path: Path) -> None:
    path.write_bytes(b"")


def header_only(path: Path) -> None:
    path.write_text(_csv().splitlines()[0] + "\n")


def not_utf8(path: Path) -> None:
    path.write_bytes(_csv([{"property_type": "Entire café"}]).encode("latin-1"))


# name -> (writer, file suffix, what the error says)
BROKEN_FILES: dict[str, tuple[Callable[[Path], None], str, str]] = {
    "truncated gzip": (truncated_gzip, ".csv.gz", "not a readable CSV"),
    "wrong delimiter": (wrong_delimiter, ".csv", "lack required column(s)"),
    "binary garbage": (binary_garbage, ".csv", "raw listings"),
    "0-byte file": (zero_bytes, ".csv", "empty"),
    "header only": (header_only, ".csv", "no rows"),
    "non-UTF-8 text": (not_utf8, ".csv", "not a readable CSV"),
}
