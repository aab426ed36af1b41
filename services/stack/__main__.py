"""`make run`: the whole system as local processes, with no Docker.

Starts Redis (append-only), an MLflow server (SQLite under .state/ unless
MLFLOW_BACKEND_STORE_URI names another store, e.g. PostgreSQL) and one worker per stage
queue; trains a first model when none is registered; prints where everything is; stops
every process it started on Ctrl-C, and nothing else.
"""

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from services.stack import processes
from services.workers.cli import follow
from shared.launch import launch_run
from shared.queues import QueueName, connect
from shared.runs import RunStore
from shared.settings import PROJECT_DIR, Settings
from shared.tracking import Tracker

log = logging.getLogger("stack")

# Each port, the setting that changes it, and its default.
PORTS = {"Redis": ("REDIS_PORT", 6379), "MLflow": ("MLFLOW_PORT", 5000)}


class StackError(Exception):
    """The stack cannot start; the message says what to do."""


def port_of(name: str) -> int:
    variable, default = PORTS[name]
    return int(os.environ.get(variable, default))


def check_prerequisites() -> None:
    """Fail early, naming the missing program or the busy port and the setting to change."""
    if shutil.which("redis-server") is None:
        raise StackError("redis-server is not installed: run `sudo apt-get install redis-server`")
    for name, (variable, _) in PORTS.items():
        if processes.tcp_open(port_of(name)):
            raise StackError(f"port {port_of(name)} for {name} is in use: set {variable}")


def start_all(state: Path) -> tuple[list[subprocess.Popen], dict[str, str]]:
    """Start Redis, MLflow and the workers; returns the processes and the workers' settings."""
    started: list[subprocess.Popen] = []
    redis, redis_port = processes.start_redis(state / "redis", port_of("Redis"))
    started.append(redis)
    backend = os.environ.get("MLFLOW_BACKEND_STORE_URI", f"sqlite:///{state / 'mlflow.db'}")
    log.info("starting MLflow on %s (first start migrates the store)", backend.split("@")[-1])
    mlflow, mlflow_port = processes.start_mlflow(state / "mlflow", backend, port_of("MLflow"))
    started.append(mlflow)
    env = {
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{mlflow_port}",
    }
    for queue in QueueName:
        started.append(
            processes.start_worker(
                queue.value, state / "logs", env, f"worker-{queue.value}-{os.getpid()}"
            )
        )
    return started, env


def ensure_champion(settings: Settings) -> None:
    """Train a first model on the default data when no champion is registered yet."""
    champion = Tracker(settings).champion()
    if champion is not None:
        log.info("champion is version %s", champion.version)
        return
    redis = connect(settings.redis_url)
    run_id = launch_run(
        redis,
        settings,
        str(settings.default_data_path),
        {"reason": "first start: no champion registered"},
    )
    log.info("no champion yet: training a first model (run %s)", run_id)
    run = follow(RunStore(redis, settings.run_ttl_seconds), run_id, timeout=900)
    if run.get("state") != "finished":
        raise StackError(f"first training run did not finish: {run.get('stages')}")


def banner(env: dict[str, str], state: Path) -> str:
    """Where everything is, once the system is up."""
    lines = [
        f"MLflow UI:  {env['MLFLOW_TRACKING_URI']}",
        f"Redis:      {env['REDIS_URL']}",
        f"Logs:       {state / 'logs'}",
        f"Retrain:    REDIS_URL={env['REDIS_URL']} make retrain",
        "Ctrl-C stops everything this command started.",
    ]
    return "\n" + "\n".join(lines) + "\n"


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    state = Path(os.environ.get("STATE_DIR", PROJECT_DIR / ".state"))
    (state / "logs").mkdir(parents=True, exist_ok=True)
    started: list[subprocess.Popen] = []
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        check_prerequisites()
        started, env = start_all(state)
        settings = Settings(
            redis_url=env["REDIS_URL"], mlflow_tracking_uri=env["MLFLOW_TRACKING_URI"]
        )
        ensure_champion(settings)
        print(banner(env, state), flush=True)
        while all(p.poll() is None for p in started):
            time.sleep(1)
        dead = [str(p.args) for p in started if p.poll() is not None]
        raise StackError(f"a process exited: {', '.join(dead)}; see {state / 'logs'}")
    except StackError as error:
        log.error("%s", error)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for process in reversed(started):
            processes.stop(process)


if __name__ == "__main__":
    sys.exit(main())
