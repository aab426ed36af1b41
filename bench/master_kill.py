"""`make run`'s gunicorn master killed (SIGKILL, with its workers left to the runner) under 50
predictions a second through the front: how long predictions fail, and how many.

`python -m bench.master_kill [--seconds S] [--runs N]` starts a `make run` of its own (its cold
start trains the default grid's champion), then kills the master N times, S seconds apart, and
prints each kill's figures and the goal (predictions answered again within 5 s).
"""

import os
import signal
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from bench import report
from bench.standalone import run_standalone
from bench.startup import make_run, stack_env
from services.stack import processes
from shared.contracts import CHALLENGE_EXAMPLE
from shared.settings import PROJECT_DIR

RATE = 50  # predictions a second, one at a time
KILL_AFTER_SECONDS = 2.0  # of steady predictions before each kill


@dataclass
class Kill:
    failed: int  # predictions that got no 200
    sent: int
    answered_again_after: float  # seconds from the kill to the first 200 after the last failure


def gunicorn_master(runner: int) -> int:
    """The runner's child that runs gunicorn (its master)."""
    for pid in processes.children(runner):
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:2]
        if any(Path(word.decode()).name == "gunicorn" for word in command):
            return pid
    raise RuntimeError("no gunicorn master under the runner")


def kill_under_load(runner: int, url: str, seconds: float) -> Kill:
    """Predictions at RATE for seconds, the master SIGKILLed after KILL_AFTER_SECONDS."""
    outcomes: list[tuple[float, bool]] = []  # (seconds since the kill, answered 200)
    kill_time = 0.0

    def kill() -> None:
        nonlocal kill_time
        time.sleep(KILL_AFTER_SECONDS)
        os.kill(gunicorn_master(runner), signal.SIGKILL)
        kill_time = time.monotonic()

    killer = threading.Thread(target=kill)
    killer.start()
    started = time.monotonic()
    with requests.Session() as session:
        for i in range(int(seconds * RATE)):
            time.sleep(max(0.0, started + i / RATE - time.monotonic()))
            try:
                ok = session.post(url, json=CHALLENGE_EXAMPLE, timeout=5).status_code == 200
            except requests.RequestException:
                ok = False
            outcomes.append((time.monotonic(), ok))
    killer.join()
    failures = [at for at, ok in outcomes if not ok]
    last_failure = max(failures, default=kill_time)
    back = min((at for at, ok in outcomes if ok and at > last_failure), default=float("inf"))
    return Kill(len(failures), len(outcomes), back - kill_time)


def measure_master_kill(folder: Path, seconds: int, runs: int) -> list[Kill]:
    folder.mkdir(parents=True, exist_ok=True)
    env = stack_env(folder, PROJECT_DIR / "config" / "pipeline.yaml")
    url = f"http://127.0.0.1:{env['GATEWAY_PORT']}/predict"
    with make_run(folder, env, timeout=900) as (runner, _):
        kills = []
        for _ in range(runs):
            kills.append(kill_under_load(runner, url, seconds))
            time.sleep(5)  # the restarted gateway's trees compiled, as a steady host has them
        return kills


def lines(kills: list[Kill]) -> list[str]:
    rows = [
        {
            "kill": str(i + 1),
            "predictions failed": f"{kill.failed} of {kill.sent}",
            "answered again after": f"{kill.answered_again_after:.2f} s",
        }
        for i, kill in enumerate(kills)
    ]
    worst = max(kill.answered_again_after for kill in kills)
    median = statistics.median(kill.answered_again_after for kill in kills)
    goal = (
        "gunicorn master kill -9 under make run: answered again within 5 s (50 requests/s)",
        f"median {median:.2f} s, worst {worst:.2f} s",
        worst <= 5.0,
    )
    return [*report.as_lines(rows), "", *report.goal_lines([goal])]


def main(argv: list[str] | None = None) -> int:
    return run_standalone(__doc__ or "", measure_master_kill, lines, argv)


if __name__ == "__main__":
    sys.exit(main())
