"""`make run` from a warm state: the state folder already holds Redis' data, MLflow's store and
a champion (left by a first, cold start, which trains it), so a start is only the processes
coming up and the gateway loading the champion. Timed from the command's start until it
prints its banner, which it does once the gateway answers ready through its front."""

import contextlib
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from bench import report
from bench.retrain import bench_config
from services.stack import processes
from shared.settings import PROJECT_DIR

BANNER = "Ctrl-C stops everything"


@contextlib.contextmanager
def make_run(folder: Path, env: dict[str, str], timeout: float) -> Iterator[tuple[int, float]]:
    """`python -m services.stack` (what `make run` runs) until its banner: yields its pid and
    the seconds it took; then stops it as Ctrl-C would and waits until everything it started
    has stopped."""
    log_path = folder / f"runner-{time.time_ns()}.log"
    with log_path.open("wb") as log:
        started = time.perf_counter()
        runner = subprocess.Popen(
            [sys.executable, "-m", "services.stack"],
            cwd=PROJECT_DIR,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            processes.wait_until(
                lambda: BANNER in log_path.read_text(errors="replace"),
                timeout,
                f"make run's banner (see {log_path})",
                runner,
            )
            yield runner.pid, time.perf_counter() - started
        finally:
            # SIGTERM, which the runner handles as it handles Ctrl-C: a bench started in the
            # background (nohup, &) hands its children SIGINT ignored, so Ctrl-C would not do.
            runner.send_signal(signal.SIGTERM)
            try:
                runner.wait(60)
            except subprocess.TimeoutExpired:
                tail = log_path.read_text(errors="replace").splitlines()[-20:]
                raise TimeoutError(
                    "make run had not stopped 60 s after Ctrl-C; its log ends:\n" + "\n".join(tail)
                ) from None
            finally:
                processes.stop(runner)


def start_and_time(folder: Path, env: dict[str, str], timeout: float) -> float:
    """Seconds from `python -m services.stack` starting until its banner."""
    with make_run(folder, env, timeout) as (_, ready):
        return ready


def stack_env(folder: Path, config: Path) -> dict[str, str]:
    """A `make run` of its own: free ports, a state folder under folder, the bench's grid."""
    ports = {f"{name}_PORT": str(processes.free_port()) for name in ("REDIS", "MLFLOW", "GATEWAY")}
    return {
        **ports,
        "STATE_DIR": str(folder / "state"),
        "PRICE_CATEGORY_PIPELINE_CONFIG": str(bench_config(config, folder)),
    }


def measure_startup(folder: Path, config: Path, runs: int) -> dict[str, float]:
    """The cold start (it trains the first champion) once, then the median of runs warm
    starts on the state it left; everything under folder, on free ports."""
    folder.mkdir(parents=True, exist_ok=True)
    env = stack_env(folder, config)
    cold = start_and_time(folder, env, timeout=600)
    warm = [start_and_time(folder, env, timeout=120) for _ in range(runs)]
    return {"cold (trains the first champion)": cold, "warm": statistics.median(warm)}


def goals(startup: dict[str, float]) -> list[tuple[str, str, bool]]:
    warm = startup["warm"]
    return [
        ("a warm `make run` is ready (its banner printed) in <= 10 s", f"{warm:.1f} s", warm <= 10)
    ]


def sections(startup: dict[str, float]) -> dict[str, list[str]]:
    return {
        "`make run`: from the command to its banner (seconds)": [
            "Redis, MLflow (SQLite), the gateway behind nginx and one worker per queue, on "
            "free ports with a state folder of their own; the cold start trains the first "
            "champion, the warm ones start on the state it left (the banner waits for the "
            "gateway serving the champion, not for the workers).",
            "",
            *report.as_lines([{"start": k, "seconds": f"{v:.1f}"} for k, v in startup.items()]),
        ]
    }
