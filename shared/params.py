"""Pipeline parameters from config/pipeline.yaml, validated once and passed explicitly."""

from pathlib import Path

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator

from shared.errors import ConfigError
from shared.modeling import ESTIMATORS, CandidateSpec
from shared.selection import GateRules
from shared.splitting import Split, SplitRule
from shared.storage import read_parquet
from shared.validation import NUMBER_COLUMNS, Expectations

SELECTABLE_METRICS = ("accuracy", "f1_macro", "roc_auc_ovr")
# Each metric's default promotion floor: well above chance on four categories (ROC AUC 0.5,
# majority-class accuracy about 0.4, macro F1 about 0.25) and below what the notebook scores.
DEFAULT_FLOORS = {"accuracy": 0.5, "f1_macro": 0.45, "roc_auc_ovr": 0.75}


class PrepParams(BaseModel):
    processed_dir: Path = Path("data/processed")


class SplitParams(BaseModel):
    """Which listings are held out for testing: those whose id hashes under the salt below
    test_size (shared.splitting). Changing the salt moves listings between the sides: a
    champion trained under another salt is then compared only on listings that were test
    listings under both."""

    test_size: float = Field(0.15, gt=0, lt=1)
    salt: str = Field("listings-1", min_length=1)

    def rule(self) -> SplitRule:
        return SplitRule(self.salt, self.test_size)

    def read(self, processed_path: str | Path) -> Split:
        """The run's shared train/test split of its cleaned dataset."""
        return self.rule().split(read_parquet(Path(processed_path)))


class CandidateParams(BaseModel):
    name: str = Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")
    estimator: str
    features: str
    params: dict[str, object] = Field(default_factory=dict)

    @field_validator("estimator")
    @classmethod
    def _known_estimator(cls, value: str) -> str:
        if value not in ESTIMATORS:
            raise ValueError(f"unknown estimator {value!r}; known: {', '.join(ESTIMATORS)}")
        return value

    def spec(self) -> CandidateSpec:
        return CandidateSpec(self.name, self.estimator, self.features, dict(self.params))


class TrainParams(BaseModel):
    candidates: list[CandidateParams] = Field(min_length=1)

    @field_validator("candidates")
    @classmethod
    def _unique_names(cls, value: list[CandidateParams]) -> list[CandidateParams]:
        names = [c.name for c in value]
        if len(set(names)) != len(names):
            raise ValueError(f"candidate names must be unique: {names}")
        return value

    def candidate(self, name: str) -> CandidateSpec:
        for candidate in self.candidates:
            if candidate.name == name:
                return candidate.spec()
        raise ConfigError(f"no candidate named {name!r} in the grid")


class SelectParams(BaseModel):
    metric: str = "roc_auc_ovr"
    # No version scoring below this is promoted (default: DEFAULT_FLOORS for the metric).
    min_score: float | None = Field(None, ge=0, le=1)
    # No version more than this below the champion's score at its own promotion is promoted.
    max_drop: float = Field(0.02, ge=0, le=1)
    # A champion is compared only on test listings it never trained on, and only if there are
    # at least this many, of every category (fewer: the last promoted version that has them).
    min_compared_rows: int = Field(200, ge=1)
    # A version this much below the champion on those listings still counts as at least as
    # good: two models of equal merit differ by about this much on ~4,000 listings.
    champion_tolerance: float = Field(0.003, ge=0, le=0.05)
    # Conditions beyond the metric, on the same listings (None: not required): no category's
    # recall more than this below the champion's, and a calibration error (ECE) no more than
    # this above the champion's.
    max_recall_drop: float | None = Field(None, ge=0, le=1)
    max_calibration_error_rise: float | None = Field(None, ge=0, le=1)
    # A winner refused only for scoring below the champion, by no more than this beyond
    # champion_tolerance, becomes the challenger: tried on live traffic beside the champion
    # (POST /model/challenger/promote decides on what it shows). None: never.
    challenger_margin: float | None = Field(None, ge=0, le=1)

    @field_validator("metric")
    @classmethod
    def _selectable(cls, value: str) -> str:
        if value not in SELECTABLE_METRICS:
            raise ValueError(f"metric must be one of {', '.join(SELECTABLE_METRICS)}")
        return value

    def gate(self) -> GateRules:
        """The promotion gate these parameters describe."""
        floor = DEFAULT_FLOORS[self.metric] if self.min_score is None else self.min_score
        return GateRules(
            self.metric,
            floor,
            self.max_drop,
            self.min_compared_rows,
            self.champion_tolerance,
            self.max_recall_drop,
            self.max_calibration_error_rise,
        )


class ValidateParams(BaseModel):
    """What the cleaned data must be like before any candidate trains on it."""

    # Inclusive bounds of every value of a numeric column (cleaning already drops prices of
    # $10 or less and coordinates outside New York).
    ranges: dict[str, tuple[float, float]] = {
        "price": (10.0, 20_000.0),
        "accommodates": (1.0, 30.0),
        "bathrooms": (0.0, 20.0),
        "bedrooms": (0.0, 30.0),
        "beds": (0.0, 50.0),
    }
    min_rows: int = Field(1000, ge=1)
    min_category_rows: int = Field(20, ge=1)  # of each category: a model learns all four
    max_dropped_share: float = Field(0.2, ge=0, le=1)
    # Against the last data that passed: a category's share may move this much (absolute),
    # the row count this much (relative).
    max_category_shift: float = Field(0.1, ge=0, le=1)
    max_row_change: float = Field(0.5, ge=0)

    @field_validator("ranges")
    @classmethod
    def _numeric_bounds(
        cls, value: dict[str, tuple[float, float]]
    ) -> dict[str, tuple[float, float]]:
        for column, (low, high) in value.items():
            if column not in NUMBER_COLUMNS:
                raise ValueError(f"{column} is not a numeric column ({', '.join(NUMBER_COLUMNS)})")
            if low > high:
                raise ValueError(f"{column}: lower bound {low} is above upper bound {high}")
        return value

    def expectations(self) -> Expectations:
        return Expectations(
            self.ranges,
            self.min_rows,
            self.max_dropped_share,
            self.max_category_shift,
            self.max_row_change,
            self.min_category_rows,
        )


class ExplainParams(BaseModel):
    sample_size: int = Field(500, ge=10)
    top_features: int = Field(15, ge=1)


class PipelineParams(BaseModel):
    """All stage parameters of one pipeline run."""

    prep: PrepParams = PrepParams()
    split: SplitParams = SplitParams()
    # The YAML section is named after its stage; `validate` itself is a method of BaseModel.
    validation: ValidateParams = Field(ValidateParams(), alias="validate")
    train: TrainParams
    select: SelectParams = SelectParams()
    explain: ExplainParams = ExplainParams()


def load_params(path: Path) -> PipelineParams:
    """Read and validate the pipeline YAML; a bad file is a ConfigError naming the problem."""
    try:
        document = yaml.safe_load(path.read_text())
        return PipelineParams.model_validate(document)
    except (OSError, yaml.YAMLError, ValidationError) as error:
        raise ConfigError(f"invalid pipeline parameters in {path}: {error}") from error
