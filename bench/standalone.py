"""A benchmark run on its own: `python -m bench.<name> [--seconds S] [--runs N]`."""

import argparse
import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def run_standalone(
    description: str,
    measure: Callable[[Path, int, int], T],
    render: Callable[[T], list[str]],
    argv: list[str] | None,
) -> int:
    """A benchmark of its own (`python -m bench.<name> [--seconds S] [--runs N]`): measure in
    a temporary folder, deleted afterwards, and print what render makes of the results."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seconds", type=int, default=15, help="each load's length")
    parser.add_argument("--runs", type=int, default=3, help="runs of each load (medians)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    folder = Path(tempfile.mkdtemp(prefix="bench-"))
    try:
        results = measure(folder, args.seconds, args.runs)
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # generated data is never kept
    print("\n".join(render(results)))  # noqa: T201 - a benchmark prints its numbers
    return 0
