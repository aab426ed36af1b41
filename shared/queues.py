"""The one home of RQ: job ids, enqueueing stages as declared, promotion messages.

Jobs are enqueued by dotted path with JSON-safe arguments, so whoever enqueues (the gateway
included) never imports pandas, scikit-learn or shap.
"""

import contextlib
import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from redis import Redis
from redis.client import Pipeline
from rq import Queue, Retry, Worker
from rq.exceptions import NoSuchJobError
from rq.job import Dependency, Job, JobStatus
from rq.serializers import JSONSerializer

from shared.liveness import DEAD_STATUSES, JobView
from shared.pipeline import QUEUES, STAGE_NAMES, Stage, following
from shared.settings import Settings

# The only function a worker runs: the generic stage job, given a declared stage's name
# (PipelineJob refuses anything else).
STAGE_JOB = "services.workers.perform.perform_stage"
# The monitor's one job, given a task's name; its own queue, its own workers.
MONITOR_JOB = "services.workers.monitor.perform_monitor"
MONITOR_QUEUE = "monitor"
MONITOR_TASKS = ("drain", "drift")
# What a job may name: a function, and the values its first argument may take.
ALLOWED_JOBS = {STAGE_JOB: STAGE_NAMES, MONITOR_JOB: MONITOR_TASKS}
# Every queue a worker consumes: the stages' and the monitor's.
WORKER_QUEUES = (*QUEUES, MONITOR_QUEUE)


class RefusedJobError(Exception):
    """A job named a function that is not one of the pipeline's stages: it never runs."""


class PipelineJob(Job):
    """An RQ job that runs only the pipeline's stage job or the monitor's, and no callbacks.

    RQ imports and calls whatever function a job names. Anyone who can write to Redis could
    otherwise run any importable function in a worker (os.system, say), bypassing the retrain
    token; workers use this job class (`rq worker --job-class`) so that they cannot.
    """

    @property
    def func(self) -> Any:
        if self.func_name not in ALLOWED_JOBS or self.instance is not None:
            raise RefusedJobError(f"refused: {self.func_name!r} is not one of the pipeline's jobs")
        if not self.args or self.args[0] not in ALLOWED_JOBS[self.func_name]:
            raise RefusedJobError(f"refused: {self.args[:1]!r} names no stage or monitor task")
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


def threads_per_worker(redis: Redis, queue_name: str) -> int:
    """This machine's cores shared among the queue's workers registered now (at least 1).

    Each worker runs one fit at a time; n workers each using every core would oversubscribe
    the machine and finish later than one worker alone.
    """
    workers = Worker.all(queue=Queue(queue_name, connection=redis))
    return max(1, (os.cpu_count() or 1) // max(1, len(workers)))


def connect(redis_url: str, timeout: float = 30) -> Redis:
    """A Redis connection that fails fast instead of hanging when Redis is away."""
    return Redis.from_url(
        redis_url,
        socket_connect_timeout=min(timeout, 5),
        socket_timeout=timeout,
        health_check_interval=30,
    )


def queue(redis: Redis, name: str) -> Queue:
    """A stage queue using RQ's JSON serializer, never pickle."""
    return Queue(name, connection=redis, serializer=JSONSerializer)


def job_id(run_id: str, stage: str, candidate: str | None = None) -> str:
    """Job ids derive from the run id, so a retried stage never enqueues its successor twice."""
    return f"{run_id}-{stage}" + (f"-{candidate}" if candidate else "")


def _retry(settings: Settings) -> Retry | None:
    if settings.job_retries == 0:
        return None
    return Retry(max=settings.job_retries, interval=settings.retry_intervals)


def enqueue_stage(
    redis: Redis,
    settings: Settings,
    stage: Stage,
    run_id: str,
    candidate: str | None = None,
    depends_on: Dependency | None = None,
    pipeline: Pipeline | None = None,
) -> Job:
    """Enqueue a stage's job unless one with its id exists already (a retry re-running the
    stage before it); given a pipeline, the job is written when the caller executes it."""
    id_ = job_id(run_id, stage.name, candidate)
    if Job.exists(id_, connection=redis):
        return Job.fetch(id_, connection=redis, serializer=JSONSerializer)
    return queue(redis, stage.queue).enqueue(
        STAGE_JOB,
        args=[stage.name, run_id, *([candidate] if candidate else [])],
        job_id=id_,
        job_timeout=stage.timeout_in(settings),
        retry=_retry(settings),
        result_ttl=settings.job_result_ttl_seconds,
        failure_ttl=settings.job_result_ttl_seconds,
        depends_on=depends_on,
        description=f"{stage.name} {id_}",
        pipeline=pipeline,
    )


def enqueue_following(
    redis: Redis, settings: Settings, stage: Stage, run_id: str, candidates: list[str]
) -> list[Job]:
    """Enqueue what follows a finished stage, in table order: each next stage, or, for one
    that runs per candidate, one job per candidate and then the stage after them, which
    waits for all.

    That one also runs when a candidate failed for good (allow_failure), so that a failed
    run is reported as failed instead of waiting forever.
    """
    jobs: list[Job] = []
    for after in following(stage):
        if not after.per_candidate:
            jobs.append(enqueue_stage(redis, settings, after, run_id))
            continue
        fanned = [enqueue_stage(redis, settings, after, run_id, name) for name in candidates]
        waits = Dependency(jobs=fanned, allow_failure=True)
        joining = [
            enqueue_stage(redis, settings, joins, run_id, depends_on=waits)
            for joins in following(after)
        ]
        jobs += [*fanned, *joining]
    return jobs


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


def monitor_interval(settings: Settings, task: str) -> int:
    """Seconds between two scheduled runs of a monitor task."""
    return {"drain": settings.monitor_drain_seconds, "drift": settings.monitor_drift_seconds}[task]


def schedule_monitor(redis: Redis, settings: Settings, task: str, now: float) -> Job:
    """Schedule a monitor task's next run, at the next multiple of its interval after `now`
    (seconds since the epoch), unless that run is scheduled already. The slot names the job,
    so the worker that runs the task and the maintenance of every monitor worker may all ask,
    and one job is scheduled. RQ's scheduler (`rq worker --with-scheduler`) queues it then."""
    every = monitor_interval(settings, task)
    slot = (int(now) // every + 1) * every
    id_ = f"monitor-{task}-{slot}"
    if Job.exists(id_, connection=redis):
        return Job.fetch(id_, connection=redis, serializer=JSONSerializer)
    return queue(redis, MONITOR_QUEUE).enqueue_at(
        datetime.fromtimestamp(slot, UTC),
        MONITOR_JOB,
        args=[task],
        job_id=id_,
        job_timeout=max(every, 60),
        # A drain a minute would otherwise keep a day of job hashes: an hour is enough to look.
        result_ttl=3600,
        failure_ttl=settings.job_result_ttl_seconds,
        description=f"monitor {task} at {datetime.fromtimestamp(slot, UTC):%H:%M:%S}",
    )


# The last monitor task asked for by hand (POST /monitor), by task: its job id.
REQUESTED_MONITOR_KEY = "monitor:requested:{task}"


def request_monitor(redis: Redis, settings: Settings, task: str, delay: float = 0) -> Job:
    """Run a monitor task now (or in `delay` seconds); while one asked for earlier has not
    started yet, that one (a client repeating the request does not pile up jobs; one that
    runs already may have started before what the client wants it to see)."""
    key = REQUESTED_MONITOR_KEY.format(task=task)
    if (known := redis.get(key)) is not None:
        with contextlib.suppress(NoSuchJobError):
            job_id = known.decode() if isinstance(known, bytes) else str(known)
            job = Job.fetch(job_id, connection=redis, serializer=JSONSerializer)
            if job.get_status(refresh=False) in (JobStatus.QUEUED, JobStatus.SCHEDULED):
                return job
    options: dict[str, Any] = {
        "args": [task],
        "job_id": f"monitor-{task}-now-{uuid.uuid4().hex[:12]}",
        "job_timeout": max(monitor_interval(settings, task), 60),
        "result_ttl": settings.job_result_ttl_seconds,
        "failure_ttl": settings.job_result_ttl_seconds,
        "description": f"monitor {task}, asked for",
    }
    monitor = queue(redis, MONITOR_QUEUE)
    if delay:
        job = monitor.enqueue_in(timedelta(seconds=delay), MONITOR_JOB, **options)
    else:
        job = monitor.enqueue(MONITOR_JOB, **options)
    redis.set(key, job.id, ex=settings.job_result_ttl_seconds)
    return job


def publish_promotion(redis: Redis, settings: Settings, version: str) -> None:
    """Tell every gateway process that a new champion version is ready to load."""
    redis.publish(settings.promotion_channel, version)
