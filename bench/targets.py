"""The serving stacks under comparison, all on loopback, all for the same champion model."""

import os
import pickle
import secrets
import subprocess
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from services.stack import front, processes
from shared.cleaning import clean_listings
from shared.modeling import fit_candidate
from shared.params import load_params
from shared.probes import answers_ok
from shared.registry import Registry
from shared.settings import PROJECT_DIR, Settings
from shared.storage import read_raw_listings
from shared.tracking import Tracker

CONFIG = PROJECT_DIR / "config" / "pipeline.yaml"


@dataclass
class Bench:
    """Started processes (stopped by close) and where each stack answers."""

    folder: Path
    env: dict[str, str] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)
    model_uri: str = ""  # the champion's logged model, once trained
    _stack: ExitStack = field(default_factory=ExitStack)

    def keep(self, name: str, process: subprocess.Popen, url: str | None = None) -> None:
        self._stack.callback(processes.stop, process)
        self.pids[name] = process.pid
        if url:
            self.urls[name] = url

    def close(self) -> None:
        self._stack.close()


def train_champion(bench: Bench) -> object:
    """The default grid's winner, the price blend (lgbm_price_blend), fitted in-process and
    registered as champion: the model every stack under comparison serves."""
    params = load_params(CONFIG)
    clean, _ = clean_listings(read_raw_listings(PROJECT_DIR / "data/raw/listings.csv.gz"))
    split = params.split.rule().split(clean)
    pipeline, _ = fit_candidate(params.train.candidate("lgbm_price_blend"), split)
    settings = Settings(mlflow_tracking_uri=bench.env["MLFLOW_TRACKING_URI"])
    tracker = Tracker(settings)
    run = tracker.client.create_run(tracker.experiment_id, run_name="bench")
    bench.model_uri = tracker.log_model(run.info.run_id, pipeline)
    registry = Registry(settings)
    registry.promote(str(registry.register(bench.model_uri, {"bench": "true"}).version))
    (bench.folder / "model.pkl").write_bytes(pickle.dumps(pipeline))
    return pipeline


def register_challenger(bench: Bench, alias: str) -> str:
    """The champion's model registered again and pointed at by alias: a gateway whose
    challenger_alias it is holds it as challenger (the same work per listing as a challenger
    of the champion's kind); other gateways hold none."""
    registry = Registry(Settings(mlflow_tracking_uri=bench.env["MLFLOW_TRACKING_URI"]))
    version = str(registry.register(bench.model_uri, {"bench": "challenger"}).version)
    registry.client.set_registered_model_alias(registry.name, alias, version)
    return version


def wait_for_challenger(bench: Bench, name: str, version: str) -> None:
    """Until every process of the gateway holds the challenger."""
    metrics = bench.urls[name].replace("/predict", "/metrics")

    def held() -> bool:
        with urllib.request.urlopen(metrics, timeout=5) as reply:
            return f"\ngateway_challenger_version {float(version)}\n" in reply.read().decode()

    processes.wait_until(held, 180, f"{name} holding challenger v{version}")


def start_backing_services(bench: Bench) -> None:
    password = secrets.token_urlsafe(18)
    redis, redis_port = processes.start_redis(bench.folder / "redis", password)
    bench.keep("redis", redis)
    mlflow, port = processes.start_mlflow(
        bench.folder / "mlflow", f"sqlite:///{bench.folder / 'mlflow.db'}"
    )
    bench.keep("mlflow", mlflow)
    bench.env = {
        "REDIS_URL": processes.redis_url(redis_port, password),
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}",
        "RETRAIN_TOKEN": "bench-token-0123456789",
    }


def gateway_log(bench: Bench, name: str) -> Path:
    return bench.folder / name / "gateway.log"


def start_gateway(
    bench: Bench, name: str, workers: int, settings: dict[str, str] | None = None
) -> None:
    """The gateway on a loopback port, and on a unix socket for a front to reach it by;
    settings: environment variables of its own."""
    process, port = processes.start_gateway(
        bench.folder / name,
        {**bench.env, **(settings or {})},
        workers=workers,
        also_socket=_socket(bench, name),
    )
    bench.keep(name, process, f"http://127.0.0.1:{port}/predict")
    ready = f"http://127.0.0.1:{port}/health/ready"
    processes.wait_until(lambda: answers_ok(ready), 60, f"{name} serving the champion")
    if (settings or {}).get("PRICE_CATEGORY_COMPILED_TREES", "true") == "true":
        # Measured as it serves for good: once every process's trees are compiled.
        metrics = f"http://127.0.0.1:{port}/metrics"
        processes.wait_until(lambda: _compiled(metrics), 120, f"{name} predicting compiled")


def _compiled(metrics_url: str) -> bool:
    with urllib.request.urlopen(metrics_url, timeout=5) as reply:
        return "\ngateway_compiled_trees 1.0\n" in reply.read().decode()


def start_front(bench: Bench, name: str, behind: str) -> None:
    """The buffering front before the gateway stack named behind, as `make run` deploys it:
    nginx reaching the same gunicorn processes on their unix socket."""
    process, port = front.start_front(bench.folder / name, f"unix:{_socket(bench, behind)}")
    bench.keep(name, process, f"http://127.0.0.1:{port}/predict")


def _socket(bench: Bench, name: str) -> Path:
    return bench.folder / f"{name}.sock"


def start_mlflow_serve(bench: Bench) -> None:
    port = processes.free_port()
    command = [
        str(processes.VENV_BIN / "mlflow"),
        "models",
        "serve",
        "-m",
        "models:/price-category@champion",
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-w",
        "1",
    ]
    # MLflow starts uvicorn by name: the virtual environment must be on PATH.
    env = {**bench.env, "PATH": f"{processes.VENV_BIN}:{os.environ['PATH']}"}
    process = processes.start_logged(command, bench.folder / "mlflow-serve.log", env)
    bench.keep("mlflow-serve", process, f"http://127.0.0.1:{port}/invocations")
    processes.wait_until(
        lambda: answers_ok(f"http://127.0.0.1:{port}/ping"), 120, "mlflow serve", process
    )


def start_notebook_app(bench: Bench) -> None:
    port = processes.free_port()
    env = {
        **bench.env,
        "NOTEBOOK_MODEL": str(bench.folder / "model.pkl"),
        "NOTEBOOK_CONFIG": str(CONFIG),
    }
    command = [
        str(processes.VENV_BIN / "gunicorn"),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "bench.notebook_app:app",
    ]
    process = processes.start_logged(command, bench.folder / "notebook.log", env)
    bench.keep("notebook", process, f"http://127.0.0.1:{port}/predict")
    processes.wait_until(lambda: processes.tcp_open(port), 30, "notebook app", process)
