"""The pipeline, declared once: its stages in order, where each runs and what it hands on.

Everything that needs the stages or their order derives it from STAGES: the jobs a finished
stage enqueues (shared.queues), a run's stage list and overall state (shared.runs), finding
dead jobs (services.workers.reconcile), the in-process experimentation mode and its dvc.yaml,
the imports workers preload, the timeouts. A stage is added here and in its own module.

Imports nothing heavy: the gateway reads it to enqueue and report runs.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from shared.stage_records import (
    Archived,
    Explained,
    Prepared,
    Selected,
    StageRecord,
    Trained,
    Validated,
)

Record = TypeVar("Record", bound=StageRecord)


class Timeouts(Protocol):
    """What a stage reads its timeout from (shared.settings.Settings)."""

    stage_timeouts: dict[str, int]


@dataclass(frozen=True)
class Stage:
    """One step of a run.

    work: dotted path of `(StageContext, RunInputs) -> record`; the generic job
    (services.workers.perform) records its start and end and enqueues what follows.
    per_candidate: one job per candidate the run trains, side by side; the next stage waits
    for all of them, and runs even when one failed, so that the run ends as failed.
    after: the stage whose success queues this one, when not the one before it in the table;
    stages after the same one run side by side, and the run is finished once all are.
    params and code: what `dvc repro` re-runs the stage for, besides the earlier stages'
    reports and the work's own module: sections of config/pipeline.yaml, shared modules.
    """

    name: str
    queue: str
    work: str
    record: type[StageRecord]
    timeout: int  # seconds before RQ kills a job of the stage; settings may override
    per_candidate: bool = False
    after: str | None = None
    params: tuple[str, ...] = ()
    code: tuple[str, ...] = ()

    @property
    def module(self) -> str:
        return self.work.rsplit(".", 1)[0]

    def status_field(self, candidate: str | None = None) -> str:
        """The run-status field a job of this stage writes."""
        return f"candidate:{candidate}" if self.per_candidate else f"stage:{self.name}"

    def timeout_in(self, settings: Timeouts) -> int:
        return settings.stage_timeouts.get(self.name, self.timeout)


STAGES: tuple[Stage, ...] = (
    Stage(
        "prep",
        queue="prep",
        work="services.workers.prep.run_prep",
        record=Prepared,
        timeout=600,
        params=("prep",),
        code=("shared/cleaning.py",),
    ),
    # On the prep queue: it reads the data prep just wrote, and takes a second.
    Stage(
        "validate",
        queue="prep",
        work="services.workers.validate.run_validate",
        record=Validated,
        timeout=300,
        params=("validate",),
        code=("shared/validation.py",),
    ),
    Stage(
        "train",
        queue="train",
        work="services.workers.train.run_train",
        record=Trained,
        timeout=1800,
        per_candidate=True,
        params=("split", "train"),
        code=("shared/features.py", "shared/modeling.py"),
    ),
    Stage(
        "select",
        queue="train",
        work="services.workers.select.run_select",
        record=Selected,
        timeout=600,
        params=("select",),
        code=("shared/selection.py",),
    ),
    Stage(
        "explain",
        queue="explain",
        work="services.workers.explain.run_explain",
        record=Explained,
        timeout=900,
        params=("explain",),
        code=("shared/evaluation.py", "shared/explaining.py", "shared/plots.py"),
    ),
    # Beside explain, not after it: nobody waits for the losing candidates' models. On the
    # train queue, whose workers are idle by now.
    Stage(
        "archive",
        queue="train",
        work="services.workers.archive.run_archive",
        record=Archived,
        timeout=600,
        after="select",
    ),
)
STAGE_NAMES = tuple(stage.name for stage in STAGES)
# One queue per kind of work, in the order a run first uses them; a worker consumes one.
QUEUES = tuple(dict.fromkeys(stage.queue for stage in STAGES))


class UnknownStageError(KeyError):
    """A name that is not one of the declared stages."""


def stage_named(name: str) -> Stage:
    for stage in STAGES:
        if stage.name == name:
            return stage
    raise UnknownStageError(f"{name!r} is not a pipeline stage ({', '.join(STAGE_NAMES)})")


def predecessor(stage: Stage) -> Stage | None:
    """The stage whose success queues this one; None for the first."""
    if stage.after is not None:
        return stage_named(stage.after)
    index = STAGES.index(stage)
    return STAGES[index - 1] if index else None


def following(stage: Stage) -> tuple[Stage, ...]:
    """The stages this one's success queues, in table order; none after a last one."""
    return tuple(later for later in STAGES if predecessor(later) == stage)


def earlier(stage: Stage) -> tuple[Stage, ...]:
    """The stages before this one in the table: a run in one process (and `dvc repro`) runs
    them in this order, one at a time."""
    return STAGES[: STAGES.index(stage)]


def producer(record: type[StageRecord]) -> Stage:
    """The stage whose work returns this kind of record."""
    for stage in STAGES:
        if stage.record is record:
            return stage
    raise UnknownStageError(f"no stage returns {record.__name__}")


@dataclass(frozen=True)
class RunInputs:
    """What a stage's work is given: its run, the records earlier stages left (by stage name),
    the run's meta (what it was asked for) and, for a per-candidate stage, its candidate."""

    run_id: str
    records: Mapping[str, Mapping[str, Any]]
    meta: Mapping[str, Any]
    candidate: str | None = None

    @classmethod
    def of_run(cls, run: Mapping[str, Any], candidate: str | None = None) -> "RunInputs":
        """From a run's status as shared.runs.RunStore.get returns it."""
        return cls(str(run["run_id"]), run["stages"], run, candidate)

    def get(self, record: type[Record]) -> Record:
        """The record an earlier stage left, as its type."""
        stage = producer(record)
        if stage.name not in self.records:
            raise KeyError(f"run {self.run_id} has no {stage.name} record")
        return record.model_validate(self.records[stage.name])

    @property
    def candidates(self) -> list[str]:
        """The candidates this run trains, as prep listed them from the grid."""
        return self.get(Prepared).candidates

    def candidate_record(self, record: type[Record], candidate: str) -> Record:
        """The record a per-candidate stage left for one candidate: in the run's status (a
        queued run) or in the stage's report (the experimentation mode)."""
        stage = producer(record)
        per_candidate = self.records.get(stage.name, {}).get("candidates")
        found = (per_candidate or self.meta.get("candidates") or {}).get(candidate)
        if found is None:
            raise KeyError(f"run {self.run_id} has no {stage.name} record for {candidate}")
        return record.model_validate(found)

    def with_record(self, stage: Stage, status: Mapping[str, Any]) -> "RunInputs":
        """These inputs and the record a stage just left (as its status holds it)."""
        return RunInputs(self.run_id, {**self.records, stage.name: status}, self.meta, None)

    def for_candidate(self, candidate: str) -> "RunInputs":
        return RunInputs(self.run_id, self.records, self.meta, candidate)
