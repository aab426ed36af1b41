"""What the fault tests share: process trees, workers replaced, a client predicting throughout."""

import contextlib
import itertools
import os
import signal
import threading
import time
from collections import Counter

import requests
from mlflow.tracking import MlflowClient

from services.stack import processes
from services.workers.reconcile import stage_jobs
from shared.contracts import CHALLENGE_EXAMPLE
from shared.liveness import DEAD_STATUSES
from shared.queues import connect, job_view
from tests.integration.conftest import Stack

SHIPPED_DATA = "data/raw/listings.csv.gz"

# Real but quick: a run takes seconds, so a test can afford several.
QUICK_GRID = [
    {
        "name": "quick_lgbm",
        "estimator": "lightgbm",
        "features": "all",
        "params": {"n_estimators": 20, "random_state": 0, "verbose": -1},
    }
]
# One candidate slow enough (seconds, even with both cores) to be caught mid-fit.
SLOW_GRID = [
    {
        "name": "slow_rf",
        "estimator": "random_forest",
        "features": "notebook",
        "params": {"n_estimators": 500, "random_state": 0, "n_jobs": 1},
    }
]

_seeds = itertools.count(1)


def fresh_slow_grid() -> list[dict]:
    """SLOW_GRID with a seed never used before: each run's model is new, so it is registered
    (promoted or not), never found identical to a champion an earlier test trained."""
    return [{**c, "params": {**c["params"], "random_state": next(_seeds)}} for c in SLOW_GRID]


def kill_tree(pid: int) -> None:
    """SIGKILL a process and its children (a worker, its scheduler and any work-horse)."""
    for process in [*processes.children(pid), pid]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process, signal.SIGKILL)


def replace_worker(
    stack: Stack, queue: str, extra_env: dict[str, str] | None = None
) -> processes.SupervisedWorker:
    """Stop the queue's worker (and whatever it left behind) and start a fresh supervised one,
    with extra settings in its environment if given."""
    old = stack.workers[queue]
    leftovers = processes.children(old.pid)
    old.stop()
    for pid in leftovers:
        kill_tree(pid)
    env = {**stack.env, **(extra_env or {})}
    worker = processes.SupervisedWorker(queue, stack.folder, env, f"worker-{queue}")
    stack.workers[queue] = worker
    return worker


def wait_for_horse(
    stack: Stack, run_id: str, workers: list[int], timeout: float = 120
) -> tuple[int, int]:
    """The work-horse forked for the run's candidate slow_rf (as the stage records its
    process) and which of the given train workers forked it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        candidate = (stack.runs().get(run_id) or {}).get("candidates", {}).get("slow_rf", {})
        if candidate.get("state") == "started":
            for worker in workers:
                if candidate["pid"] in processes.children(worker):
                    return worker, int(candidate["pid"])
        time.sleep(0.2)
    raise AssertionError(f"training of run {run_id} never started")


class TwoTrainWorkers:
    """The stack's train worker plus a second one, so that a job survives either's death."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.survivor = processes.start_worker("train", stack.folder, stack.env, "worker-train-2")
        self.leftovers: set[int] = set()

    def horse_of(self, run_id: str) -> tuple[int, int]:
        """(worker, work-horse) training the run's candidate; the worker's other children
        (its scheduler, orphaned once the worker is killed) are stopped at the end."""
        parent, horse = wait_for_horse(
            self.stack, run_id, [self.stack.workers["train"].pid, self.survivor.pid]
        )
        self.leftovers |= set(processes.children(parent)) - {horse}
        return parent, horse

    def __enter__(self) -> "TwoTrainWorkers":
        return self

    def __exit__(self, *_: object) -> None:
        for pid in self.leftovers:
            kill_tree(pid)
        processes.stop(self.survivor)
        replace_worker(self.stack, "train")


def wait_for_jobs_to_end(stack: Stack, run_id: str, timeout: float = 120) -> dict:
    """The run once none of its jobs is queued, deferred, scheduled or started (a run is
    failed as soon as one stage fails, while select may still be cleaning up after it)."""
    redis = connect(stack.settings.redis_url)
    jobs = stage_jobs(run_id, list((stack.runs().get(run_id) or {}).get("candidates", {})))
    ended = {None, "finished", *DEAD_STATUSES}

    def all_ended() -> bool:
        return all(job_view(redis, job.job_id).status in ended for job in jobs)

    processes.wait_until(all_ended, timeout, f"the jobs of run {run_id} to end")
    return stack.runs().get(run_id) or {}


def versions_of(stack: Stack, run_id: str) -> list:
    client = MlflowClient(stack.settings.mlflow_tracking_uri)
    return list(
        client.search_model_versions(
            f"name = '{stack.settings.model_name}' and tags.pipeline_run_id = '{run_id}'"
        )
    )


def champion_version(stack: Stack) -> str | None:
    client = MlflowClient(stack.settings.mlflow_tracking_uri)
    try:
        return str(client.get_model_version_by_alias(stack.settings.model_name, "champion").version)
    except Exception:  # noqa: BLE001 - no model or no alias yet
        return None


class PredictionLoop:
    """Clients (one by default) predicting the challenge example in a loop, counting every
    status they get and keeping each answer's time and version."""

    def __init__(self, gateway: str, clients: int = 1) -> None:
        self.url = f"{gateway}/predict"
        self.statuses: Counter[int | str] = Counter()
        self.versions: set[str] = set()
        self.answered: list[tuple[float, str]] = []  # (time.monotonic(), model version)
        self.prediction_ids: list[str] = []  # of the answers
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def _run(self) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                try:
                    reply = session.post(self.url, json=CHALLENGE_EXAMPLE, timeout=10)
                except requests.RequestException as error:
                    self.statuses[type(error).__name__] += 1
                    continue
                self.statuses[reply.status_code] += 1
                if reply.status_code == 200:
                    answer = reply.json()
                    self.versions.add(answer["model_version"])
                    self.answered.append((time.monotonic(), answer["model_version"]))
                    self.prediction_ids.append(answer["prediction_id"])
                time.sleep(0.01)

    def __enter__(self) -> "PredictionLoop":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    @property
    def failures(self) -> dict:
        return {status: n for status, n in self.statuses.items() if status != 200}
