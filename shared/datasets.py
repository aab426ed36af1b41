"""Cleaned datasets in MLflow, one run per data version, with a copy on each node's disk.

Stages on different machines share no disk: prep logs a cleaned dataset (and its cleaning
report) once per content hash to a run of kind "dataset", which it finishes only after both
files are in, so a finished dataset run is a complete dataset. Every later stage, on any node,
reads it through the MLflow server (proxied artifacts: no storage credentials) and keeps a copy
named by the hash, so a node downloads a data version once; the node that cleaned it has it
already.
"""

import tempfile
from pathlib import Path
from typing import Any

from shared.storage import move_into_place, processed_path, write_parquet_atomic
from shared.tracking import Tracker

DATASET_KIND = "dataset"
REPORT_FILE = "report.json"


class DatasetStore:
    """Finds, logs and fetches cleaned datasets by data version (shared.storage's data_hash)."""

    def __init__(self, tracker: Tracker, cache_dir: Path) -> None:
        self.tracker = tracker
        self.cache_dir = cache_dir

    def find(self, data_hash: str) -> str | None:
        """The run holding this data version, complete; None when none is."""
        run = self.tracker.newest_run_tagged(DATASET_KIND, {"data_hash": data_hash})
        return run.info.run_id if run else None

    def report(self, run_id: str) -> dict[str, Any]:
        """The cleaning report logged beside a dataset."""
        return self.tracker.load_dict(run_id, REPORT_FILE)

    def log(self, data_hash: str, frame: Any, report: dict[str, Any], tags: dict[str, str]) -> str:
        """Keep the dataset on this node and log it with its report; the run's id."""
        local = self.cached(data_hash)
        write_parquet_atomic(frame, local)
        tracker = self.tracker
        # A failed one is never found: half a dataset is no dataset.
        with tracker.complete_run(
            DATASET_KIND, f"dataset-{data_hash[:12]}", {"data_hash": data_hash, **tags}
        ) as run_id:
            tracker.client.log_artifact(run_id, str(local))
            tracker.log_dict(run_id, report, REPORT_FILE)
        return run_id

    def cached(self, data_hash: str) -> Path:
        return processed_path(self.cache_dir, data_hash)

    def local(self, data_hash: str, run_id: str) -> Path:
        """The dataset as a file on this node: the copy kept here, else downloaded once."""
        local = self.cached(data_hash)
        if local.is_file():
            return local
        local.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=local.parent, prefix=".download-") as folder:
            fetched = self.tracker.client.download_artifacts(run_id, local.name, folder)
            move_into_place(Path(fetched), local)
        return local
