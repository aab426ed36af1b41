"""Cleaned datasets in MLflow, one run per data version, with a copy on each node's disk.

Stages on different machines share no disk: prep logs a cleaned dataset (and its cleaning
report) once per content hash to a run of kind "dataset", which it finishes only after both
files are in, so a finished dataset run is a complete dataset. Every later stage, on any node,
reads it through the MLflow server (proxied artifacts: no storage credentials) and keeps a copy
named by the hash, so a node downloads a data version once; the node that cleaned it has it
already.

MLflow is storage, not an authority: anyone who reaches it can log a run tagged like a dataset.
So a dataset is reused only by the run id and SHA-256 prep recorded in Redis when it logged it
(the ledger), and every copy, downloaded or kept on a node, is checked against that digest
before it is read.
"""

import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from redis import Redis

from shared.errors import DataError
from shared.storage import file_sha256, move_into_place, processed_path, write_parquet_atomic
from shared.tracking import Tracker

DATASET_KIND = "dataset"
REPORT_FILE = "report.json"
LEDGER_KEY = "datasets:{data_hash}"  # the dataset prep logged for a data version


@dataclass(frozen=True)
class LoggedDataset:
    """A dataset as prep logged it: its run, the digest of its Parquet file, its cleaning
    report."""

    run_id: str
    sha256: str
    report: dict[str, Any]


class DatasetStore:
    """Finds, logs and fetches cleaned datasets by data version (shared.storage's data_hash).

    ledger: the Redis that records what prep logged; None in the experimentation mode, which
    then never reuses a dataset it did not clean itself.
    """

    def __init__(self, tracker: Tracker, cache_dir: Path, ledger: Redis | None) -> None:
        self.tracker = tracker
        self.cache_dir = cache_dir
        self.ledger = ledger

    def find(self, data_hash: str) -> LoggedDataset | None:
        """The dataset prep logged for this data version; None when it logged none."""
        raw = self.ledger.get(LEDGER_KEY.format(data_hash=data_hash)) if self.ledger else None
        return LoggedDataset(**json.loads(raw)) if raw else None

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
        if self.ledger is not None:  # recorded once complete: never a half-logged dataset
            self.ledger.set(LEDGER_KEY.format(data_hash=data_hash), json.dumps(asdict(logged)))
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
            fetched = Path(self.tracker.client.download_artifacts(run_id, local.name, folder))
            if file_sha256(fetched) != sha256:
                raise DataError(
                    f"the dataset in MLflow run {run_id} is not the one prep logged "
                    "(its SHA-256 differs): refused"
                )
            move_into_place(fetched, local)
        return local
