"""Session fixtures: real redis-server, PostgreSQL, mlflow server and rq workers on loopback."""

import itertools
import json
import secrets
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from services.stack import processes
from services.workers import promotion
from services.workers.context import StageContext
from shared.launch import launch_run
from shared.queues import WORKER_QUEUES, connect
from shared.registry import Registry
from shared.runs import RunStore
from shared.selection import FinishedCandidate
from shared.settings import PROJECT_DIR, Settings
from shared.stage_records import Prepared
from shared.staged_models import STAGED_FOLDER
from shared.storage import file_md5, processed_path
from tests.integration.postgres import remove_cluster, start_postgres

GATEWAY_TOKEN = "integration-token"
GATEWAY_POLL_SECONDS = 5  # how often each gateway process checks the champion alias
MONITOR_DRAIN_SECONDS = 2  # the prediction log reaches Parquet within seconds
DASHBOARD = ("ops", "dash-pw-5c1e9-7f3a2b8d")  # distinctive: tests grep logs for it

# Small but real: the notebook's forest with fewer trees, and the default grid's kind of
# gradient-boosted model on every field. Enough to exercise every stage in seconds.
FAST_GRID = [
    {
        "name": "notebook_rf",
        "estimator": "random_forest",
        "features": "notebook",
        "params": {"n_estimators": 40, "class_weight": "balanced", "random_state": 0},
    },
    {
        "name": "lgbm_all",
        "estimator": "lightgbm",
        "features": "all",
        "params": {"n_estimators": 60, "random_state": 0, "verbose": -1},
    },
]
_variants = itertools.count(1)


def promotable_grid() -> list[dict]:
    """FAST_GRID with a seed of its own for LightGBM: the same model (without bagging or
    feature sampling LightGBM draws no random numbers) under other parameters, so a run that
    must promote is never "unchanged" from a champion an earlier test left; the tie promotes."""
    seed = next(_variants)
    return [
        {**c, "params": {**c["params"], "random_state": seed}} if c["name"] == "lgbm_all" else c
        for c in FAST_GRID
    ]


# Candidates that cannot beat either model above: always the most frequent category.
WEAK_GRID = [
    {
        "name": "majority",
        "estimator": "dummy",
        "features": "notebook",
        "params": {"strategy": "prior"},
    }
]


def write_pipeline_config(
    path: Path, candidates: list[dict], processed_dir: Path, select: dict | None = None
) -> None:
    """A pipeline.yaml with the given grid (and gate settings beyond the metric, if given)
    and a small SHAP sample."""
    document = {
        "prep": {"processed_dir": str(processed_dir)},
        "split": {"test_size": 0.15, "salt": "listings-1"},
        "validate": {"max_category_shift": 0.1},  # dvc repro reads each stage's section
        "train": {"candidates": candidates},
        "select": {"metric": "roc_auc_ovr", **(select or {})},
        "explain": {"sample_size": 100, "top_features": 10},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document))


@dataclass
class Stack:
    """The running system as a test sees it."""

    settings: Settings
    pipeline_config: Path
    folder: Path
    env: dict[str, str]
    workers: dict[str, processes.SupervisedWorker] = field(default_factory=dict)
    # redis, postgres, mlflow: fault tests replace them when they restart one
    services: dict[str, subprocess.Popen] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    redis_password: str = field(default_factory=lambda: secrets.token_urlsafe(18))

    def write_grid(self, candidates: list[dict], select: dict | None = None) -> None:
        """Replace the candidate grid (and gate settings); workers read it afresh every job."""
        write_pipeline_config(self.pipeline_config, candidates, self.folder / "processed", select)

    @property
    def monitor_config(self) -> Path:
        """The monitor's parameters the workers read (the shipped ones unless a test writes)."""
        return self.folder / "monitor.yaml"

    def write_monitor_config(self, drift: dict | None = None) -> None:
        """The shipped config/monitor.yaml, with these drift parameters over its own."""
        document = yaml.safe_load((PROJECT_DIR / "config" / "monitor.yaml").read_text())
        document["drift"] |= drift or {}
        self.monitor_config.write_text(yaml.safe_dump(document))

    def runs(self) -> RunStore:
        return RunStore(connect(self.settings.redis_url), self.settings.run_ttl_seconds)

    def shipped_listings(self) -> pd.DataFrame:
        """The shipped data as an earlier run cleaned it (the dataset of its md5 alone: runs
        that also trained on realised prices leave other datasets beside it)."""
        raw = PROJECT_DIR / "data" / "raw" / "listings.csv.gz"
        return pd.read_parquet(processed_path(self.folder / "processed", file_md5(raw)))

    def staged_models(self, run_id: str) -> list[str]:
        """The fitted candidates a run still has staged in MLflow (shared.staged_models)."""
        run = self.runs().get(run_id) or {}
        parent = run.get("stages", {}).get("prep", {}).get("parent_run_id")
        if parent is None:
            return []
        client = MlflowClient(self.settings.mlflow_tracking_uri)
        return [item.path for item in client.list_artifacts(parent, STAGED_FOLDER)]


def wait_for_run(stack: "Stack", run_id: str, timeout: float = 300) -> dict:
    """Poll the run's status until it finishes or fails."""
    store = stack.runs()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = store.get(run_id)
        if run and run["state"] in ("finished", "failed"):
            return run
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} did not end in {timeout}s: {store.get(run_id)}")


# boto3's settings for the S3-compatible server a stack may run (moto's; any key is accepted).
S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "price-category-test",
    "AWS_SECRET_ACCESS_KEY": "price-category-test",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def start_s3_server(folder: Path) -> tuple[subprocess.Popen, dict[str, str]]:
    """moto's S3-compatible server on a loopback port, and the environment that points boto3
    (and the gateway and prep, with s3:// dumps turned on) at it."""
    folder.mkdir(parents=True, exist_ok=True)
    port = processes.free_port()
    command = [str(processes.VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    process = processes.start_logged(command, folder / "s3.log")
    processes.wait_for_start(lambda: processes.tcp_open(port), 60, "moto_server", process)
    env = {
        **S3_CREDENTIALS,
        "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{port}",
        "PRICE_CATEGORY_S3_DUMPS": "true",
    }
    return process, env


@contextmanager
def running_stack(folder: Path, s3: bool = False) -> Iterator[Stack]:
    """Redis, PostgreSQL, an MLflow server on it (and with s3, an S3-compatible store for
    dumps) and one worker per queue; all stopped after (the ones running then: a fault test
    may have replaced some)."""
    stack = Stack(Settings(), folder / "pipeline.yaml", folder, {})
    stop_supervising = threading.Event()

    def supervise() -> None:  # what `make run` does for its workers, and compose's restart
        while not stop_supervising.wait(0.5):
            for worker in list(stack.workers.values()):
                worker.ensure_running()

    supervising = threading.Thread(target=supervise, daemon=True)
    try:
        stack.services["redis"], redis_port = processes.start_redis(
            folder / "redis", stack.redis_password
        )
        stack.services["postgres"], pg_port = start_postgres(folder / "postgres")
        stack.services["mlflow"], mlflow_port = processes.start_mlflow(
            folder / "mlflow", f"postgresql+psycopg2://postgres@127.0.0.1:{pg_port}/mlflow"
        )
        stack.ports = {"redis": redis_port, "postgres": pg_port, "mlflow": mlflow_port}
        stack.env = {
            "REDIS_URL": processes.redis_url(redis_port, stack.redis_password),
            "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{mlflow_port}",
            "PRICE_CATEGORY_PIPELINE_CONFIG": str(stack.pipeline_config),
            "PRICE_CATEGORY_RETRY_INTERVALS": "[1, 2]",
            "PRICE_CATEGORY_MONITOR_DIR": str(folder / "monitor"),
            "PRICE_CATEGORY_FEEDBACK_DIR": str(folder / "feedback"),
            "PRICE_CATEGORY_MONITOR_DRAIN_SECONDS": str(MONITOR_DRAIN_SECONDS),
            "PRICE_CATEGORY_MONITOR_CONFIG": str(stack.monitor_config),
            # Compiling every gateway's trees took minutes of gcc from the tests beside them:
            # only the session's gateway compiles (as deployed; test_compiled_trees).
            "PRICE_CATEGORY_COMPILED_TREES": "false",
        }
        if s3:
            stack.services["s3"], s3_env = start_s3_server(folder / "s3")
            stack.env |= s3_env
        stack.settings = Settings(
            redis_url=stack.env["REDIS_URL"],
            mlflow_tracking_uri=stack.env["MLFLOW_TRACKING_URI"],
            pipeline_config=stack.pipeline_config,
            retry_intervals=[1, 2],
            monitor_dir=folder / "monitor",
            feedback_dir=folder / "feedback",
            monitor_drain_seconds=MONITOR_DRAIN_SECONDS,
            monitor_config=stack.monitor_config,
        )
        stack.write_grid(FAST_GRID)
        stack.write_monitor_config()
        for queue in WORKER_QUEUES:
            stack.workers[queue] = processes.SupervisedWorker(
                queue, folder, stack.env, f"worker-{queue}"
            )
        supervising.start()
        yield stack
    finally:
        stop_supervising.set()
        if supervising.is_alive():
            supervising.join()
        for worker in stack.workers.values():
            worker.stop()
        for process in reversed(stack.services.values()):
            processes.stop(process)
        remove_cluster(folder / "postgres")


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("stack"), s3=True) as running:
        yield running


@pytest.fixture
def corrupt_data(tmp_path: Path) -> str:
    """A raw file that lacks most listing columns."""
    path = tmp_path / "corrupt.csv"
    path.write_text("id,price\n1,$75.00\n")
    return str(path)


@pytest.fixture(scope="session")
def shipped_data() -> str:
    path = PROJECT_DIR / "data" / "raw" / "listings.csv.gz"
    assert path.is_file(), "data/raw/listings.csv.gz is the default training data"
    return str(path.relative_to(PROJECT_DIR))


@dataclass
class RunningGateway:
    master: subprocess.Popen  # gunicorn's master; its children are the worker processes
    url: str


@pytest.fixture(scope="session")
def running_gateway(stack: Stack) -> Iterator[RunningGateway]:
    """The gateway under gunicorn, as deployed, on the session's stack."""
    env = {
        **stack.env,
        "RETRAIN_TOKEN": GATEWAY_TOKEN,
        "DASHBOARD_USER": DASHBOARD[0],
        "DASHBOARD_PASSWORD": DASHBOARD[1],
        "PRICE_CATEGORY_ALIAS_POLL_SECONDS": str(GATEWAY_POLL_SECONDS),
        "PRICE_CATEGORY_COMPILED_TREES": "true",
    }
    process, port = processes.start_gateway(stack.folder / "gateway", env)
    yield RunningGateway(process, f"http://127.0.0.1:{port}")
    processes.stop(process)


@pytest.fixture(scope="session")
def gateway(running_gateway: RunningGateway) -> str:
    """The session's gateway's URL."""
    return running_gateway.url


@pytest.fixture
def served_champion(stack: Stack, gateway: str, shipped_data: str) -> str:
    """Make sure the gateway serves a champion (training one if none exists); its version."""
    if Registry(stack.settings).champion() is None:
        stack.write_grid(FAST_GRID)
        run_id = launch_run(connect(stack.settings.redis_url), stack.settings, shipped_data)
        assert wait_for_run(stack, run_id)["state"] == "finished"
    version = str(Registry(stack.settings).champion().version)

    def serving() -> bool:
        with urllib.request.urlopen(f"{gateway}/health/ready", timeout=5) as reply:
            return json.load(reply)["model_version"] == version

    processes.wait_until(serving, 60, f"gateway serving version {version}")
    return version


def retrain(stack: Stack, data_path: str) -> dict:
    """Launch a run on data_path and wait for it to finish (failing the test if it does not)."""
    run_id = launch_run(connect(stack.settings.redis_url), stack.settings, data_path)
    run = wait_for_run(stack, run_id)
    assert run["state"] == "finished", run
    return run


# Session-wide: the promotion and lifecycle modules each trained it before (a minute apiece).
@pytest.fixture(scope="session")
def fast_run(stack: Stack, shipped_data: str) -> dict:
    """A finished run of the fast grid: both candidates' models logged, the split on disk."""
    stack.write_grid(FAST_GRID)
    return retrain(stack, shipped_data)


def gate_in_process(stack: Stack, fast_run: dict, name: str) -> dict:
    """Select's register-and-gate for one of fast_run's candidates, as a new pipeline run."""
    prepared = Prepared.model_validate(fast_run["stages"]["prep"])
    candidate = fast_run["candidates"][name]
    chosen = FinishedCandidate(
        candidate["mlflow_run_id"],
        candidate["metrics"],
        fast_run["stages"]["archive"]["models"][name],
    )
    run_id = f"test-{name}-{uuid.uuid4()}"
    return promotion.register_and_gate(StageContext(stack.settings), run_id, prepared, name, chosen)
