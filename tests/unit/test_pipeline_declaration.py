"""The pipeline's declaration is the one list of its stages: what derives from it agrees."""

import importlib
import json

import pytest
import yaml

from services.workers.dvc_stages import DVC_YAML, render
from services.workers.reconcile import stage_jobs
from shared.pipeline import (
    QUEUES,
    STAGE_NAMES,
    STAGES,
    RunInputs,
    UnknownStageError,
    earlier,
    following,
    predecessor,
    producer,
    stage_named,
)
from shared.queues import WORKER_QUEUES
from shared.runs import RunStore, run_stages
from shared.stage_records import Prepared, Selected
from tests.unit.test_compose import WORKERS


def test_dvc_yaml_is_generated_from_the_declaration():
    assert DVC_YAML.read_text() == render(), "stale dvc.yaml: run `make dvc.yaml`"
    stages = yaml.safe_load(DVC_YAML.read_text())["stages"]
    assert list(stages) == list(STAGE_NAMES)


def test_a_stage_running_per_candidate_sits_between_two_single_stages():
    for stage in STAGES:
        if stage.per_candidate:
            before, after = predecessor(stage), following(stage)
            assert before is not None and not before.per_candidate, stage.name
            assert len(after) == 1 and not after[0].per_candidate, stage.name


def test_every_stage_but_the_first_follows_one_declared_before_it():
    assert predecessor(STAGES[0]) is None
    for stage in STAGES[1:]:
        before = predecessor(stage)
        assert before is not None and before in earlier(stage), stage.name
        assert stage in following(before)


def test_archive_runs_beside_explain_once_the_winner_is_promoted():
    assert following(stage_named("select")) == (stage_named("explain"), stage_named("archive"))
    assert following(stage_named("explain")) == following(stage_named("archive")) == ()


def test_names_records_and_work_are_unique_and_importable():
    assert len(set(STAGE_NAMES)) == len(STAGES)
    assert len({stage.record for stage in STAGES}) == len(STAGES)
    for stage in STAGES:
        assert producer(stage.record) is stage
        module, name = stage.work.rsplit(".", 1)
        assert callable(getattr(importlib.import_module(module), name)), stage.work
    with pytest.raises(UnknownStageError):
        stage_named("os.system")


def test_every_queue_has_its_workers_in_compose():
    assert sorted(WORKERS.values()) == sorted(WORKER_QUEUES)
    assert set(QUEUES) < set(WORKER_QUEUES)


def test_a_stage_found_dead_after_its_work_is_checked_against_the_job_it_queues_last():
    jobs = {job.field: job for job in stage_jobs("r", ["a", "b"])}
    for stage in STAGES:
        after = following(stage)
        if stage.per_candidate:
            assert jobs[stage.status_field("a")].job_id == f"r-{stage.name}-a"
            assert jobs[stage.status_field("a")].successor_job_id is None  # queued with it
        elif not after:
            assert jobs[stage.status_field()].successor_job_id is None
        elif after[-1].per_candidate:  # the stage that waits for every candidate is queued last
            joining = following(after[-1])[-1]
            assert jobs[stage.status_field()].successor_job_id == f"r-{joining.name}"
        else:
            assert jobs[stage.status_field()].successor_job_id == f"r-{after[-1].name}"
    assert jobs["stage:select"].successor_job_id == "r-archive"
    assert len(jobs) == len(STAGES) - 1 + 2


class _Recorder:
    """Just enough of a Redis pipeline to see what a new run records."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}

    def hset(self, _key: str, field: str, value: str) -> None:
        self.fields[field] = value

    def expire(self, *_: object) -> None: ...

    def zadd(self, *_: object) -> None: ...


def test_a_new_run_records_every_single_stage_its_first_one_queued():
    recorder = _Recorder()
    RunStore(None, 60).create("r", {}, recorder)  # type: ignore[arg-type]
    singles = [stage.status_field() for stage in STAGES if not stage.per_candidate]
    assert [name for name in recorder.fields if name != "meta"] == singles
    recorded = {
        name.removeprefix("stage:"): json.loads(value)
        for name, value in recorder.fields.items()
        if name != "meta"
    }
    assert recorded[STAGE_NAMES[0]]["state"] == "queued"
    assert list(run_stages(recorded, {})) == list(STAGE_NAMES)


def test_a_stage_reads_an_earlier_stage_s_record_as_its_type():
    prepared = {
        "data_path": "d.csv",
        "data_hash": "h",
        "dataset_run_id": "dataset",
        "parent_run_id": "parent",
        "data_quality_run_id": "q",
        "rows_in": 3,
        "rows_out": 2,
        "dropped": {"price_at_most_10": 1},
        "candidates": ["a", "b"],
    }
    status = {"state": "finished", "attempts": 1, "pid": 7, **prepared}  # bookkeeping ignored
    inputs = RunInputs("r", {"prep": status}, {"data_path": "d.csv"})

    assert inputs.get(Prepared) == Prepared(**prepared)
    assert inputs.candidates == ["a", "b"]
    assert inputs.for_candidate("a").candidate == "a"
    with pytest.raises(KeyError, match="no select record"):
        inputs.get(Selected)
