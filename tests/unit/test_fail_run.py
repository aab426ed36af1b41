"""A run reported failed has its clean-up done: whoever polls its status may rely on it."""

from pathlib import Path
from typing import Any

from services.workers.context import StageContext, fail_run
from shared.settings import Settings
from shared.storage import staged_model_path, write_staged_model


class RecordingRuns:
    """A run store that notes whether the staged models were still there when each record was
    written."""

    def __init__(self, staged: Path) -> None:
        self.staged = staged
        self.writes: list[tuple[str, bool]] = []

    def update(self, run_id: str, field: str, **changes: Any) -> dict[str, Any]:
        self.writes.append((changes.get("state", ""), self.staged.exists()))
        return {}

    def field(self, run_id: str, field: str) -> dict[str, Any]:
        return {}  # no MLflow parent run recorded: nothing to close


def test_staged_models_are_gone_before_the_run_is_recorded_failed(tmp_path: Path):
    staged = staged_model_path(tmp_path, "run-1", "lgbm")
    write_staged_model({"a": "model"}, staged)
    context = StageContext(Settings())
    runs = RecordingRuns(staged.parent)
    # Set what the context would otherwise build from settings and connections.
    context.__dict__.update(runs=runs, staging_dir=tmp_path)

    fail_run(context, "run-1", "stage:select", "worker died")

    assert runs.writes == [("failed", False)]
    assert not staged.parent.exists()
