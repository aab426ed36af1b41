"""A dataset store in memory, for prep's logic without an MLflow server (shared.datasets is
tested against a real one in the integration tests)."""

from typing import Any


class MemoryDatasets:
    def __init__(self) -> None:
        self.logged: dict[str, tuple[str, Any, dict[str, Any]]] = {}  # run id -> dataset

    def find(self, data_hash: str) -> str | None:
        return next((run for run, (h, _, _) in self.logged.items() if h == data_hash), None)

    def report(self, run_id: str) -> dict[str, Any]:
        return self.logged[run_id][2]

    def log(self, data_hash: str, frame: Any, report: dict[str, Any], tags: dict[str, str]) -> str:
        run_id = f"dataset-{len(self.logged)}"
        self.logged[run_id] = (data_hash, frame, report)
        return run_id
