"""Cleaned datasets in MLflow, one run per data version, with a copy on each node's disk.

Stages on different machines share no disk: prep logs a cleaned dataset (and its cleaning
report) once per content hash to a run of kind "dataset", which it finishes only after both
files are in, so a finished dataset run is a complete dataset. Every later stage, on any node,
reads it through the MLflow server (proxied artifacts: no storage credentials) and keeps a copy
named by the hash, so a node downloads a data version once; the node that cleaned it has it
already.

A dataset is reused only through the entry prep recorded in the ledger (shared.ledger) when it
logged it, never found in MLflow by its tags, and every copy, downloaded or kept on a node, is
checked against that entry's SHA-256 before it is read.
"""

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from shared.ledger import Ledger
from shared.storage import file_sha256, move_into_place, processed_path, write_parquet_atomic
from shared.tracking import Tracker

DATASET_KIND = "dataset"
REPORT_FILE = "report.json"


@dataclass(frozen=True)
class LoggedDataset:
    """A dataset as prep logged it: its run, the digest of its Parquet file, its cleaning
    report."""

    run_id: str
    sha256: str
    report: dict[str, Any]


class DatasetStore:
    """Finds, logs and fetches cleaned datasets by data version (shared.storage's data_hash)."""

    def __init__(self, tracker: Tracker, cache_dir: Path, ledger: Ledger) -> None:
        self.tracker = tracker
        self.cache_dir = cache_dir
        self.ledger = ledger

    def find(self, data_hash: str) -> LoggedDataset | None:
        """The dataset prep logged for this data version; None when it logged none."""
        entry = self.ledger.entry(f"dataset:{data_hash}")
        return LoggedDataset(**entry) if entry else None

    def log(
        self, data_hash: str, frame: Any, report: dict[str, Any], tags: dict[str, str]
    ) -> LoggedDataset:
        """Keep the dataset on this node, log it with its report and record it in the ledger."""
        local = self.cached(data_hash)
        write_parquet_atomic(frame, local)
        tracker = self.tracker
        # A failed one is never found: half a dataset is no dataset.
        with tracker.complete_run(
            DATASET_KIND, f"dataset-{data_hash[:12]}", {"data_hash": data_hash, **tags}
        ) as run_id:
            tracker.client.log_artifact(run_id, str(local))
            tracker.log_dict(run_id, report, REPORT_FILE)
        logged = LoggedDataset(run_id, file_sha256(local), report)
        # Recorded once complete: never a half-logged dataset.
        self.ledger.record(f"dataset:{data_hash}", asdict(logged))
        return logged

    def cached(self, data_hash: str) -> Path:
        return processed_path(self.cache_dir, data_hash)

    def local(self, data_hash: str, run_id: str, sha256: str) -> Path:
        """The dataset as a file on this node, checked against the digest prep recorded: the
        copy kept here if it matches, else downloaded once (a mismatch there is a DataError)."""
        local = self.cached(data_hash)
        if local.is_file() and file_sha256(local) == sha256:
            return local
        local.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=local.parent, prefix=".download-") as folder:
            fetched = self.tracker.download_checked(run_id, local.name, sha256, Path(folder))
            move_into_place(fetched, local)
        return local
