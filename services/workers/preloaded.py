"""The RQ worker class every stage worker runs: `rq worker --worker-class` imports this module
in the long-lived worker process, before any job.

RQ forks a work-horse per job, and a horse that has to import the stages itself pays for
MLflow, scikit-learn, LightGBM and SHAP on every job (seconds each). Imported here, once,
they are inherited by every fork. Nothing here starts a thread or a connection, so forking
stays safe.
"""

# Imported for their side effect, loaded modules. Besides the stages: what MLflow imports
# lazily while logging a model (GitPython for source tags, pyfunc, skops) and pyarrow's
# Parquet reader, found by diffing sys.modules around one training job.
import ctypes
import gc
import importlib
import logging
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import git  # noqa: F401
import mlflow.models  # noqa: F401
import mlflow.pyfunc  # noqa: F401
import pyarrow
import pyarrow.dataset  # noqa: F401
import pyarrow.parquet  # noqa: F401
import skops.io  # noqa: F401
from mlflow.utils import requirements_utils
from rq import Queue, Worker
from rq.job import Job

import services.workers.perform  # noqa: F401
from services.workers.context import job_context
from services.workers.monitor import ensure_scheduled
from services.workers.reconcile import reconcile_runs
from services.workers.redis_loss import run_despite_redis_loss
from shared.pipeline import STAGES
from shared.queues import MONITOR_QUEUE

for _stage in STAGES:  # every stage's work, as declared
    importlib.import_module(_stage.module)

# Arrow's memory from the C library's allocator, not mimalloc (Arrow's default), which keeps
# what it freed: a monitor job joining prices against a 200,000-row day held on to 100 MB
# after it (50 MB this way), in every work-horse, on top of the modules every one inherits.
pyarrow.set_memory_pool(pyarrow.system_memory_pool())

# Logging a model checks its pip requirements against the installed packages, mapping every
# installed distribution to its modules first (~0.3 s). MLflow keeps that map for the life of
# the process, and a fork inherits it: built once here, no job pays for it again. (A private
# helper of a pinned MLflow; without it each job just builds the map itself.)
_build_package_map = getattr(requirements_utils, "_init_modules_to_packages_map", None)
if _build_package_map is not None:
    _build_package_map()

# Everything loaded so far lives as long as the worker: moved out of the garbage collector's
# reach, a work-horse's collections never walk (and so never copy-on-write) the hundreds of
# thousands of objects it inherits, and a fit that allocates many objects runs as fast as in
# a fresh process.
gc.freeze()


log = logging.getLogger(__name__)

# Linux's prctl option: the signal a process gets when its parent dies.
_PR_SET_PDEATHSIG = 1
# The worker's pid while it forks its scheduler process; None while it forks anything else.
_scheduler_parent: int | None = None


def _bind_scheduler_to_worker() -> None:
    """Run in every child the worker forks: its scheduler gets SIGTERM when the worker dies
    (RQ's scheduler would otherwise live on alone, holding the queue's scheduler lock). A
    work-horse is left alone: it outlives a killed worker to finish its job."""
    if _scheduler_parent is None:
        return
    ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != _scheduler_parent:  # the worker died before the line above
        os._exit(0)


os.register_at_fork(after_in_child=_bind_scheduler_to_worker)


@contextmanager
def _forking_the_scheduler() -> Iterator[None]:
    global _scheduler_parent
    _scheduler_parent = os.getpid()
    try:
        yield
    finally:
        _scheduler_parent = None


class PreloadedWorker(Worker):
    """rq's Worker, whose module has the stage jobs and their libraries loaded, which ends runs
    left without a live job each time it runs RQ's maintenance (a monitor worker also makes
    sure the monitor's next runs are scheduled), whose scheduler process ends with it, and
    which outlives Redis going away while a job runs (services.workers.redis_loss)."""

    def execute_job(self, job: Job, queue: Queue) -> None:
        def execute() -> None:
            super(PreloadedWorker, self).execute_job(job, queue)

        if not run_despite_redis_loss(execute, lambda: self.horse_pid, self.connection.ping):
            self._horse_pid = 0  # reaped while Redis was away: RQ's record of it goes too

    def _start_scheduler(self, *args: Any, **kwargs: Any) -> None:
        with _forking_the_scheduler():
            super()._start_scheduler(*args, **kwargs)

    def run_maintenance_tasks(self) -> None:
        # First RQ's own: it fails or retries dead workers' jobs, and starts the scheduler
        # again if it has died.
        with _forking_the_scheduler():
            super().run_maintenance_tasks()
        context = job_context()
        try:
            reconcile_runs(context)
            if MONITOR_QUEUE in self.queue_names():
                ensure_scheduled(context.redis, context.settings)
        except Exception:  # noqa: BLE001 - never stop the worker; the next pass tries again
            log.exception("reconciling runs or scheduling the monitor failed")
