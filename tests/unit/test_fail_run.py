"""A run reported failed has its clean-up done: whoever polls its status may rely on it."""

from typing import Any

from services.workers.context import StageContext, fail_run
from shared.settings import Settings


class Recording:
    """What fail_run did, in order: staged models deleted, records written."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, ...]] = []


class RecordingRuns:
    """A run store whose prep record names the run's MLflow parent run."""

    def __init__(self, recording: Recording) -> None:
        self.recording = recording

    def update(self, run_id: str, field: str, **changes: Any) -> dict[str, Any]:
        self.recording.steps.append(("record", field, changes.get("state", "")))
        return {}

    def field(self, run_id: str, field: str) -> dict[str, Any]:
        return {"parent_run_id": "parent-1"} if field == "stage:prep" else {}


class RecordingStagedModels:
    def __init__(self, recording: Recording) -> None:
        self.recording = recording

    def remove(self, parent_run_id: str) -> None:
        self.recording.steps.append(("remove staged", parent_run_id))


class RecordingTracker:
    def __init__(self, recording: Recording) -> None:
        self.recording = recording

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        self.recording.steps.append(("end", run_id, status))


def _context(recording: Recording) -> StageContext:
    context = StageContext(Settings())
    # Set what the context would otherwise build from settings and connections.
    context.__dict__.update(
        runs=RecordingRuns(recording),
        staged_models=RecordingStagedModels(recording),
        tracker=RecordingTracker(recording),
    )
    return context


def test_staged_models_are_gone_before_the_run_is_recorded_failed():
    recording = Recording()
    fail_run(_context(recording), "run-1", "stage:select", "worker died")
    assert recording.steps == [
        ("remove staged", "parent-1"),
        ("record", "stage:select", "failed"),
        ("end", "parent-1", "FAILED"),
    ]


def test_a_failed_deletion_still_records_the_failure():
    recording = Recording()
    context = _context(recording)

    def unreachable(parent_run_id: str) -> None:
        raise ConnectionError("MLflow is down")

    context.staged_models.remove = unreachable
    fail_run(context, "run-1", "candidate:rf", "worker died")
    assert ("record", "candidate:rf", "failed") in recording.steps
