"""Retrain end to end through the gateway and the queues, against the same work in one process.

The floor fits the grid sequentially in one Python process with no queue and no MLflow, as the
notebook did: prep, each candidate's fit, scoring and pickle, the winner's SHAP and plots saved
as PNG files. The pipeline run does the same work plus everything that makes it a service:
queue hand-offs, MLflow logging (skops instead of pickle), model registration, the champion
check, and the serving timings it records per candidate.
"""

import json
import logging
import pickle
import secrets
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import yaml
from rq import Worker

from bench import report
from bench.measure import resident_mib
from bench.swap import serving_lines
from services.client.api import GatewayClient
from services.stack import processes
from shared.cleaning import clean_listings
from shared.evaluation import evaluate_winner
from shared.modeling import fit_candidate, probabilities, score_predictions
from shared.params import load_params
from shared.pipeline import stage_named
from shared.queues import connect
from shared.storage import read_raw_listings

TOKEN = "bench-token-0123456789"
FLOOR, ONE, TWO = "sequential floor", "1 training worker", "2 training workers"


@dataclass
class RetrainTiming:
    """Seconds per step; from the request until the new champion is served (the floor: until
    its winner is fitted and saved) and until the run is finished (archive done; the floor:
    explained too); each worker's peak resident memory while it worked."""

    steps: dict[str, float]
    served: float
    total: float
    peak_mib: dict[str, float] = field(default_factory=dict)


def _timed(work: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = work()
    return result, time.perf_counter() - started


def sequential_floor(config: Path, raw: Path, folder: Path) -> RetrainTiming:
    """The grid fitted one candidate after another in this process; files written to folder."""
    folder.mkdir(parents=True, exist_ok=True)
    params = load_params(config)
    started = time.perf_counter()
    (clean, _), prep = _timed(lambda: clean_listings(read_raw_listings(raw)))
    steps = {"prep": prep}
    split = params.split.rule().split(clean)
    best: tuple[float, Any] = (float("-inf"), None)
    for spec in (candidate.spec() for candidate in params.train.candidates):
        started_fit = time.perf_counter()
        pipeline, _ = fit_candidate(spec, split)
        metrics = score_predictions(split.y_test, probabilities(pipeline, split.x_test))
        (folder / f"{spec.name}.pkl").write_bytes(pickle.dumps(pipeline))
        steps[f"train {spec.name}"] = time.perf_counter() - started_fit
        best = max(best, (metrics[params.select.metric], pipeline), key=lambda pair: pair[0])
    served = time.perf_counter() - started
    _, steps["explain"] = _timed(lambda: _save_explanation(best[1], clean, params, folder))
    plt.close("all")
    return RetrainTiming(steps, served, time.perf_counter() - started)


def _save_explanation(pipeline: Any, clean: Any, params: Any, folder: Path) -> None:
    explained = evaluate_winner(pipeline, clean, params)
    (folder / "importances.json").write_text(json.dumps(explained.importances))
    for artifact, figure in explained.figures.items():
        figure.savefig(folder / artifact.replace("/", "-"))


def bench_config(config: Path, folder: Path) -> Path:
    """The pipeline config with processed data kept in the run's folder (no cache from before)."""
    document = yaml.safe_load(config.read_text())
    document["prep"]["processed_dir"] = str(folder / "processed")
    path = folder / "pipeline.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


class Sampling:
    """Calls sample() every interval seconds in a thread, while the context is open."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> "Sampling":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


class FirstServed(Sampling):
    """When a gateway process first logged serving a champion (on a fresh stack, the one the
    run promotes). Read from its log, not asked over HTTP: a readiness probe 20 times a second
    would itself take CPU from the run it times."""

    def __init__(self, gateway_log: Path, interval: float = 0.05) -> None:
        super().__init__(interval)
        self.gateway_log = gateway_log
        self.at: float | None = None

    def sample(self) -> None:
        if self.at is None and serving_lines(self.gateway_log) > 0:
            self.at = time.time()


class PeakMemory(Sampling):
    """The peak memory (PSS) of processes (with their work-horse children)."""

    def __init__(self, pids: dict[str, int], interval: float = 0.2) -> None:
        super().__init__(interval)
        self.pids = pids
        self.peak = dict.fromkeys(pids, 0.0)

    def sample(self) -> None:
        for name, pid in self.pids.items():
            # A work-horse can end between listing the children and reading them.
            with suppress(FileNotFoundError, ProcessLookupError):
                self.peak[name] = max(self.peak[name], resident_mib(pid))


def end_to_end(
    folder: Path, config: Path, train_workers: int, sample_memory: bool = False
) -> RetrainTiming:
    """POST /retrain on a fresh stack until the gateway serves the champion and until the run
    is finished; stage times from its status. With sample_memory, each worker's peak memory
    too (read from /proc 5 times a second, which slows the work it watches: a run that
    samples is not one that is timed)."""
    folder.mkdir(parents=True, exist_ok=True)
    with ExitStack() as started:
        redis_password = secrets.token_urlsafe(18)
        redis, redis_port = processes.start_redis(folder / "redis", redis_password)
        started.callback(processes.stop, redis)
        mlflow, mlflow_port = processes.start_mlflow(
            folder / "mlflow", f"sqlite:///{folder / 'mlflow.db'}"
        )
        started.callback(processes.stop, mlflow)
        env = {
            "REDIS_URL": processes.redis_url(redis_port, redis_password),
            "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{mlflow_port}",
            "PRICE_CATEGORY_PIPELINE_CONFIG": str(bench_config(config, folder)),
            "RETRAIN_TOKEN": TOKEN,
        }
        queues = ["prep", *["train"] * train_workers, "explain"]
        workers = {}
        for number, queue in enumerate(queues):
            worker = processes.start_worker(queue, folder, env, f"{queue}-{number}")
            started.callback(processes.stop, worker)
            workers[f"{queue}-{number}"] = worker.pid
        gateway, port = processes.start_gateway(folder / "gateway", env, workers=1)
        started.callback(processes.stop, gateway)
        # Deployed workers run long before a retrain; their start-up is not the retrain's.
        _wait_for_workers(env["REDIS_URL"], len(queues))
        client = GatewayClient(f"http://127.0.0.1:{port}", TOKEN)
        memory = PeakMemory(workers if sample_memory else {})
        served = FirstServed(folder / "gateway" / "gateway.log")
        with memory, served:
            posted = time.time()
            run_id = client.retrain(reason="benchmark")["run_id"]
            # Each stage's times come from the run's own record: polling slowly misses none.
            run = client.follow(run_id, lambda _: None, timeout=1800, interval=1.0)
            processes.wait_until(lambda: served.at is not None, 60, "the champion served")
        if run["state"] != "finished":
            raise RuntimeError(f"benchmark run {run_id} {run['state']}: {run['stages']}")
        assert served.at is not None
        return RetrainTiming(
            stage_seconds(run, posted), served.at - posted, run_end(run) - posted, memory.peak
        )


def _wait_for_workers(redis_url: str, count: int) -> None:
    """Until every worker has registered with RQ, i.e. listens on its queue."""
    redis = connect(redis_url)
    processes.wait_until(lambda: len(Worker.all(connection=redis)) >= count, 120, "workers")


def _intervals(run: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """Each job's start and end: every stage's, each candidate's for the one run per
    candidate."""
    records: dict[str, dict[str, Any]] = {}
    for name, record in run["stages"].items():  # in the pipeline's order
        if stage_named(name).per_candidate:
            records |= {f"{name} {c}": job for c, job in run["candidates"].items()}
        else:
            records[name] = record
    return {name: (r["started_at"], r["ended_at"]) for name, r in records.items()}


def run_end(run: dict[str, Any]) -> float:
    """When the run's last job ended (the last stages run side by side): it is finished."""
    return max(end for _, end in _intervals(run).values())


def stage_seconds(run: dict[str, Any], posted: float) -> dict[str, float]:
    """Each job's own time, and the time no job of the run was working (queue hand-offs)."""
    intervals = _intervals(run)
    steps = {name: end - start for name, (start, end) in intervals.items()}
    busy, covered_until = 0.0, posted
    for start, end in sorted(intervals.values()):
        busy += max(0.0, end - max(start, covered_until))
        covered_until = max(covered_until, end)
    steps["waiting between jobs"] = run_end(run) - posted - busy
    return steps


def measure_retraining(
    folder: Path, config: Path, raw: Path, runs: int
) -> dict[str, RetrainTiming]:
    """The floor and the pipeline with 1 and 2 training workers; each the median of runs
    (by run finished), the pipeline's with the workers' peak memory from one more run."""
    measurements: dict[str, Callable[[int], RetrainTiming]] = {
        FLOOR: lambda n: sequential_floor(config, raw, folder / f"floor-{n}"),
        ONE: lambda n: end_to_end(folder / f"one-worker-{n}", config, 1),
        TWO: lambda n: end_to_end(folder / f"two-workers-{n}", config, 2),
    }
    timings = {}
    for name, measure_once in measurements.items():
        results = sorted((measure_once(n) for n in range(runs)), key=lambda t: t.total)
        timings[name] = results[len(results) // 2]
        logging.info("retrain, %s: %.1f s", name, timings[name].total)
    for name, workers in ((ONE, 1), (TWO, 2)):
        sampled = end_to_end(folder / f"memory-{workers}", config, workers, sample_memory=True)
        timings[name].peak_mib = sampled.peak_mib
    return timings


def goals(timings: dict[str, RetrainTiming]) -> list[tuple[str, str, bool]]:
    floor, one, two = timings[FLOOR], timings[ONE], timings[TWO]
    return [
        (
            "retrain, request to champion served <= 1.3x the floor (1 training worker)",
            f"{one.served:.1f} / {floor.served:.1f} s = {one.served / floor.served:.2f}x",
            one.served <= 1.3 * floor.served,
        ),
        (
            "retrain, request to run finished <= 1.5x the floor (1 training worker)",
            f"{one.total:.1f} / {floor.total:.1f} s = {one.total / floor.total:.2f}x",
            one.total <= 1.5 * floor.total,
        ),
        (
            "retrain, 2 training workers finish faster than 1",
            f"{two.total:.1f} / {one.total:.1f} s = {two.total / one.total:.2f}x",
            two.total < one.total,
        ),
    ]


def sections(timings: dict[str, RetrainTiming]) -> dict[str, list[str]]:
    # In a pipeline run's order (it has the most steps), then any the floor alone has.
    by_steps = sorted(timings.values(), key=lambda t: -len(t.steps))
    steps = list(dict.fromkeys(step for t in by_steps for step in t.steps))

    def row(step: str) -> dict[str, str]:
        return {"step": step, **{name: _seconds(t.steps.get(step)) for name, t in timings.items()}}

    rows = [row(step) for step in steps]
    rows.append(
        {
            "step": "**request to champion served**",
            **{n: f"**{t.served:.1f}**" for n, t in timings.items()},
        }
    )
    rows.append(
        {
            "step": "**request to run finished**",
            **{n: f"**{t.total:.1f}**" for n, t in timings.items()},
        }
    )
    memory = [
        {"run": name, "worker": worker, "peak PSS MiB (worker + work-horse)": f"{mib:.0f}"}
        for name, t in timings.items()
        for worker, mib in t.peak_mib.items()
    ]
    return {
        "Retrain end to end (seconds)": [
            "POST /retrain until the gateway serves the new champion (its process logs the "
            "swap), and until the run is finished (explain and archive, side by side, both "
            "done); fresh Redis, MLflow (SQLite) and workers per run, the workers listening "
            "before the POST; the "
            "workers' memory comes from one more run, since sampling it slows them. The "
            "floor does the same prep, fits, scoring and SHAP + plots in one process with no "
            "queue and no MLflow, saving models as pickles and plots as PNG files; its "
            "'served' is when its winner is fitted and saved, its 'finished' after the SHAP "
            "and plots. Training stages each fitted model as a pickle too; a stage's time "
            "beyond the floor's is its MLflow logging and loading (and, for training, the "
            "serving timings it records); validate, select and archive have no floor "
            "counterpart (checks; the winner's model logged, registered and gated; the others' "
            "models logged).",
            "",
            *report.as_lines(rows),
        ],
        "Worker memory while working": report.as_lines(memory),
    }


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"
