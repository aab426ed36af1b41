"""What every stage job needs, built once per job, and the bookkeeping around a stage."""

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from redis import Redis
from rq import get_current_job

from shared.datasets import DatasetStore
from shared.drift import MonitorParams, load_monitor_params
from shared.errors import DataError, PipelineError
from shared.ledger import Ledger
from shared.params import PipelineParams, load_params
from shared.pipeline import RunInputs, producer
from shared.queues import connect
from shared.registry import Registry
from shared.runs import RunStore, now
from shared.settings import Settings, get_settings
from shared.stage_records import Prepared, Trained
from shared.staged_models import StagedModels
from shared.tracking import Tracker

log = logging.getLogger(__name__)


@dataclass
class StageContext:
    """Settings, parameters and connections for one job; connections made on first use.

    in_process: run by the experimentation mode (`dvc repro`), not by a queue's worker.
    """

    settings: Settings
    in_process: bool = False

    @cached_property
    def params(self) -> PipelineParams:
        return load_params(self.settings.pipeline_config)

    @cached_property
    def monitor_params(self) -> MonitorParams:
        return load_monitor_params(self.settings.monitor_config)

    @cached_property
    def redis(self) -> Redis:
        return connect(self.settings.redis_url)

    @cached_property
    def runs(self) -> RunStore:
        return RunStore(self.redis, self.settings.run_ttl_seconds)

    @cached_property
    def tracker(self) -> Tracker:
        return Tracker(self.settings)

    @cached_property
    def registry(self) -> Registry:
        return Registry(self.settings)

    @cached_property
    def datasets(self) -> DatasetStore:
        """Cleaned datasets in MLflow, kept on this node under prep.processed_dir, reused by
        what prep recorded in Redis (the experimentation mode has none: it cleans afresh)."""
        cache = self.settings.resolve(self.params.prep.processed_dir)
        return DatasetStore(self.tracker, cache, self.ledger)

    @cached_property
    def ledger(self) -> Ledger:
        """What stages recorded of the artifacts they logged (none in the experimentation mode,
        which has no Redis: it reuses nothing it did not make itself)."""
        return Ledger(None if self.in_process else self.redis)

    def dataset_file(self, prepared: Prepared) -> Path:
        """The run's cleaned dataset as a file on this node, checked against prep's digest."""
        if not prepared.dataset_sha256:
            raise DataError(
                f"run's dataset {prepared.dataset_run_id} was recorded without its digest "
                "(before datasets were checked): retrain to use it"
            )
        return self.datasets.local(
            prepared.data_hash, prepared.dataset_run_id, prepared.dataset_sha256
        )

    @cached_property
    def staged_models(self) -> StagedModels:
        """Fitted candidates waiting, in their run's MLflow artifacts, to be logged as models."""
        return StagedModels(self.tracker.client)

    def staged_model(self, run: RunInputs, candidate: str) -> Any:
        """A candidate's staged model, checked against the digest its training recorded."""
        digest = run.candidate_record(Trained, candidate).staged_sha256
        return self.staged_models.get(run.get(Prepared).parent_run_id, candidate, digest)


def job_context() -> StageContext:
    """The context of the job being performed."""
    return StageContext(get_settings())


def _retries_left() -> int:
    job = get_current_job()
    return int(job.retries_left or 0) if job is not None else 0


def _cancel_retries() -> None:
    """Bad data or config fails at once: retrying the same input cannot help."""
    job = get_current_job()
    if job is not None:
        job.retries_left = 0


def run_tracked(
    context: StageContext, run_id: str, field: str, work: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """Run one stage's work, recording start, finish or failure in the run's status."""
    attempt = int(context.runs.field(run_id, field).get("attempts", 0)) + 1
    job = get_current_job()
    context.runs.update(
        run_id,
        field,
        state="started",
        started_at=now(),
        attempts=attempt,
        error=None,
        job_id=job.id if job else None,
        # Where the work runs (RQ's work-horse; its container or machine): for operators.
        pid=os.getpid(),
        host=socket.gethostname(),
    )
    try:
        outputs = work()
    except PipelineError as error:
        _cancel_retries()
        fail_run(context, run_id, field, str(error))
        raise
    except Exception as error:
        reason = f"{type(error).__name__}: {error}"
        if _retries_left() > 0:
            log.warning(
                "run %s %s attempt %d failed, will retry: %s", run_id, field, attempt, reason
            )
            context.runs.update(
                run_id, field, state="retrying", error=f"attempt {attempt} failed: {reason}"
            )
        else:
            fail_run(context, run_id, field, reason)
        raise
    context.runs.update(run_id, field, state="finished", ended_at=now(), **outputs)
    return outputs


def fail_run(context: StageContext, run_id: str, field: str, reason: str) -> None:
    """Delete the models the run staged (nothing will log them now), mark the stage failed for
    good and close the run's MLflow parent run as failed.

    The staged models go first: whoever sees the run failed may rely on its clean-up being done.
    """
    log.error("run %s %s failed: %s", run_id, field, reason)
    opened_by = producer(Prepared).status_field()  # the stage that opens the MLflow run
    parent = context.runs.field(run_id, field).get("parent_run_id") or context.runs.field(
        run_id, opened_by
    ).get("parent_run_id")
    if parent:  # before prep opened the MLflow run, nothing can have been staged
        try:
            context.staged_models.remove(parent)
        except Exception:  # noqa: BLE001 - the stage's own failure is what must be reported
            log.exception("could not delete the staged models of run %s", run_id)
    context.runs.update(run_id, field, state="failed", ended_at=now(), error=reason)
    if parent:
        try:
            context.tracker.end_run(parent, "FAILED")
        except Exception:  # noqa: BLE001 - the stage's own failure is what must be reported
            log.exception("could not mark MLflow run %s failed", parent)
