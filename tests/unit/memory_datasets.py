"""A dataset store in memory, for prep's logic without an MLflow server (shared.datasets is
tested against a real one in the integration tests)."""

from typing import Any

from shared.datasets import LoggedDataset


class MemoryDatasets:
    def __init__(self) -> None:
        self.logged: dict[str, tuple[str, Any, dict[str, Any]]] = {}  # run id -> dataset

    def find(self, data_hash: str) -> LoggedDataset | None:
        found = (run for run, (h, _, _) in self.logged.items() if h == data_hash)
        run_id = next(found, None)
        return None if run_id is None else self._logged(run_id)

    def log(
        self, data_hash: str, frame: Any, report: dict[str, Any], tags: dict[str, str]
    ) -> LoggedDataset:
        run_id = f"dataset-{len(self.logged)}"
        self.logged[run_id] = (data_hash, frame, report)
        return self._logged(run_id)

    def _logged(self, run_id: str) -> LoggedDataset:
        return LoggedDataset(run_id, f"sha256-of-{run_id}", self.logged[run_id][2])
