"""What each stage hands on: typed records, one per stage, kept in the run's status.

A stage's work returns its record; the run status stores it beside the stage's bookkeeping
(state, times, attempts), and a later stage reads it back as the same type (RunInputs.get).
The experimentation mode keeps the same records in reports/<stage>.json.
"""

from typing import Any

from pydantic import BaseModel, ConfigDict


class StageRecord(BaseModel):
    """Base of the records: read back from a status that also holds bookkeeping fields."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    def as_status(self) -> dict[str, Any]:
        """The record as JSON-safe fields of the run's status."""
        return self.model_dump(mode="json")


class Prepared(StageRecord):
    """The cleaned dataset, the run's MLflow parent run and the candidates to train."""

    data_path: str
    data_hash: str
    dataset_run_id: str  # the MLflow run holding the cleaned dataset (shared.datasets)
    dataset_sha256: str = ""  # of its Parquet file, as prep logged it ("": recorded before)
    dataset_reused: bool = False  # logged by an earlier run (False: this run cleaned it)
    parent_run_id: str
    data_quality_run_id: str
    rows_in: int
    rows_out: int
    dropped: dict[str, int]
    candidates: list[str]
    feedback_rows: int = 0  # of rows_out: realised prices (POST /feedback)


class Validated(StageRecord):
    """The cleaned data passed its checks: their MLflow run, and the run of the data it was
    compared with (None: no data had passed before)."""

    validation_run_id: str
    rows_out: int
    category_shares: dict[str, float]
    baseline_run_id: str | None


class Trained(StageRecord):
    """One candidate fitted, scored and staged: its MLflow run and summary metrics."""

    mlflow_run_id: str
    metrics: dict[str, float]
    staged_sha256: str  # of the staged model's bytes: checked before they are loaded


class Selected(StageRecord):
    """The winner, its logged model and the gate's decision (version None: none registered)."""

    report: list[dict[str, Any]]
    winner: str
    winner_run_id: str
    model_uri: str
    metric: str
    score: float
    candidates: dict[str, dict[str, float]]
    version: str | None
    promoted: bool
    decision: str
    reason: str
    failed_conditions: list[str] = []
    # Every condition the gate checked: its name, the version's value, the bound it had to
    # reach, the champion's number the bound came from, and whether it passed.
    conditions: list[dict[str, Any]] = []
    champion_version: str | None = None
    champion_score: float | None = None
    champion_score_at_promotion: float | None = None
    # The comparison: with the champion or the last promoted version that could be compared,
    # on how many test listings neither trained on, and both scores there.
    compared_version: str | None = None
    compared_rows: int | None = None
    compared_candidate_score: float | None = None
    compared_score: float | None = None
    # Refused by a small margin (select.challenger_margin) and tried on live traffic instead.
    challenger: bool = False


class Explained(StageRecord):
    """Where the winner's SHAP importances were logged, and on how many rows."""

    winner_run_id: str
    importances_artifact: str
    explained_rows: int


class Archived(StageRecord):
    """Every candidate's logged model, by candidate name."""

    models: dict[str, str]
