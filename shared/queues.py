"""The one home of RQ: queue names, job ids, enqueueing each stage, promotion messages.

Jobs are enqueued by dotted path with JSON-safe arguments, so whoever enqueues (the gateway
included) never imports pandas, scikit-learn or shap.
"""

import os
from enum import StrEnum
from typing import Any

from redis import Redis
from redis.client import Pipeline
from rq import Queue, Retry, Worker
from rq.exceptions import NoSuchJobError
from rq.job import Dependency, Job
from rq.serializers import JSONSerializer

from shared.liveness import DEAD_STATUSES, JobView
from shared.settings import Settings

RESULT_TTL = 7 * 24 * 3600
# The only functions a worker runs: the pipeline's stage jobs (PipelineJob refuses others).
PREP_JOB = "services.workers.prep.prep_job"
TRAIN_JOB = "services.workers.train.train_job"
SELECT_JOB = "services.workers.select.select_job"
EXPLAIN_JOB = "services.workers.explain.explain_job"
ARCHIVE_JOB = "services.workers.archive.archive_job"
STAGE_JOBS = frozenset({PREP_JOB, TRAIN_JOB, SELECT_JOB, EXPLAIN_JOB, ARCHIVE_JOB})


class RefusedJobError(Exception):
    """A job named a function that is not one of the pipeline's stages: it never runs."""


class PipelineJob(Job):
    """An RQ job that runs only a pipeline stage function, and no callbacks.

    RQ imports and calls whatever function a job names. Anyone who can write to Redis could
    otherwise run any importable function in a worker (os.system, say), bypassing the retrain
    token; workers use this job class (`rq worker --job-class`) so that they cannot.
    """

    @property
    def func(self) -> Any:
        if self.func_name not in STAGE_JOBS or self.instance is not None:
            raise RefusedJobError(f"refused: {self.func_name!r} is not a pipeline stage job")
        return super().func

    # The pipeline sets no callbacks; one named in Redis is never imported, let alone called.
    @property
    def success_callback(self) -> None:
        return None

    @property
    def failure_callback(self) -> None:
        return None

    @property
    def stopped_callback(self) -> None:
        return None


class QueueName(StrEnum):
    """One queue per stage; each worker process consumes one of them."""

    PREP = "prep"
    TRAIN = "train"
    EXPLAIN = "explain"


def threads_per_training_worker(redis: Redis) -> int:
    """This machine's cores shared among the training workers registered now (at least 1).

    Each worker runs one fit at a time; n workers each using every core would oversubscribe
    the machine and finish later than one worker alone.
    """
    workers = Worker.all(queue=Queue(QueueName.TRAIN, connection=redis))
    return max(1, (os.cpu_count() or 1) // max(1, len(workers)))


def connect(redis_url: str, timeout: float = 30) -> Redis:
    """A Redis connection that fails fast instead of hanging when Redis is away."""
    return Redis.from_url(
        redis_url,
        socket_connect_timeout=min(timeout, 5),
        socket_timeout=timeout,
        health_check_interval=30,
    )


def queue(redis: Redis, name: QueueName) -> Queue:
    """A stage queue using RQ's JSON serializer, never pickle."""
    return Queue(name.value, connection=redis, serializer=JSONSerializer)


def job_id(run_id: str, stage: str, candidate: str | None = None) -> str:
    """Job ids derive from the run id, so a retried stage never enqueues its successor twice."""
    return f"{run_id}-{stage}" + (f"-{candidate}" if candidate else "")


def _retry(settings: Settings) -> Retry | None:
    if settings.job_retries == 0:
        return None
    return Retry(max=settings.job_retries, interval=settings.retry_intervals)


def _enqueue_once(
    redis: Redis,
    name: QueueName,
    function: str,
    args: list[Any],
    id_: str,
    timeout: int,
    settings: Settings,
    depends_on: Dependency | None = None,
    pipeline: Pipeline | None = None,
) -> Job:
    """Enqueue a job unless one with this id exists already (a retry re-running the caller);
    given a pipeline, the job is written when the caller executes it."""
    if Job.exists(id_, connection=redis):
        return Job.fetch(id_, connection=redis, serializer=JSONSerializer)
    return queue(redis, name).enqueue(
        function,
        args=args,
        job_id=id_,
        job_timeout=timeout,
        retry=_retry(settings),
        result_ttl=RESULT_TTL,
        failure_ttl=RESULT_TTL,
        depends_on=depends_on,
        description=f"{function.rsplit('.', 1)[-1]} {id_}",
        pipeline=pipeline,
    )


def enqueue_prep(
    redis: Redis,
    settings: Settings,
    run_id: str,
    data_path: str,
    pipeline: Pipeline | None = None,
) -> Job:
    """Start a pipeline run: clean the raw listings."""
    return _enqueue_once(
        redis,
        QueueName.PREP,
        PREP_JOB,
        [run_id, data_path],
        job_id(run_id, "prep"),
        settings.prep_timeout,
        settings,
        pipeline=pipeline,
    )


def enqueue_training(
    redis: Redis, settings: Settings, run_id: str, candidates: list[str], inputs: dict[str, str]
) -> Job:
    """One train job per candidate, then a select job that waits for all of them.

    The select job also runs when a candidate failed for good (allow_failure), so that a
    failed run is reported as failed instead of waiting forever.
    """
    train_jobs = [
        _enqueue_once(
            redis,
            QueueName.TRAIN,
            TRAIN_JOB,
            [run_id, name, inputs],
            job_id(run_id, "train", name),
            settings.train_timeout,
            settings,
        )
        for name in candidates
    ]
    return _enqueue_once(
        redis,
        QueueName.TRAIN,
        SELECT_JOB,
        [run_id, inputs],
        job_id(run_id, "select"),
        settings.select_timeout,
        settings,
        depends_on=Dependency(jobs=train_jobs, allow_failure=True),
    )


def enqueue_explain(redis: Redis, settings: Settings, run_id: str, inputs: dict[str, str]) -> Job:
    """Explain the winner of a run."""
    return _enqueue_once(
        redis,
        QueueName.EXPLAIN,
        EXPLAIN_JOB,
        [run_id, inputs],
        job_id(run_id, "explain"),
        settings.explain_timeout,
        settings,
    )


def enqueue_archive(redis: Redis, settings: Settings, run_id: str, inputs: dict[str, str]) -> Job:
    """Log the other candidates' models. On the train queue: its workers are idle by now."""
    return _enqueue_once(
        redis,
        QueueName.TRAIN,
        ARCHIVE_JOB,
        [run_id, inputs],
        job_id(run_id, "archive"),
        settings.select_timeout,
        settings,
    )


def job_view(redis: Redis, id_: str) -> JobView:
    """A job's status (None when it does not exist) and, once dead, its error's last line."""
    try:
        job = Job.fetch(id_, connection=redis, serializer=JSONSerializer)
    except (NoSuchJobError, ValueError):  # ValueError: an id RQ could never have created
        return JobView(None)
    found = job.get_status(refresh=False)
    status = found.value if found is not None else "unknown"  # str() would give "JobStatus.X"
    if status not in DEAD_STATUSES:
        return JobView(status)
    result = job.latest_result()
    lines = (result.exc_string or "").strip().splitlines() if result else []
    return JobView(status, lines[-1] if lines else f"job {status}")


def publish_promotion(redis: Redis, settings: Settings, version: str) -> None:
    """Tell every gateway process that a new champion version is ready to load."""
    redis.publish(settings.promotion_channel, version)
