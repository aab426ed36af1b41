"""The compose stack on a real Docker engine, as a user runs it: images built where no registry
is reachable (deploy/offline-images.sh), brought up from empty volumes to a served champion,
training scaled over three containers, a training container killed in the middle of a fit,
taken down and brought back, and removed without a trace.

The steps run in order on one stack (each needs the one before); the module's fixture takes
the stack down with its volumes whatever happens.
"""

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
from mlflow import MlflowClient

from services.stack import processes
from services.stack.processes import wait_until
from shared.contracts import CHALLENGE_EXAMPLE
from shared.settings import PROJECT_DIR
from tests.containers.engine import (
    COMPOSE_FILE,
    SCALE_GRID,
    StackUnderTest,
    build_offline_images,
    config_override,
    docker,
    hostname,
    leftovers,
    stack_secrets,
)
from tests.integration.conftest import FAST_GRID
from tests.reliability.faults import fresh_slow_grid

pytestmark = pytest.mark.containers

COMPOSE_OVERRIDE = PROJECT_DIR / "docker-compose.override.yml"


@dataclass
class ComposeStack(StackUnderTest):
    project: str = ""

    def compose(self, *args: str, timeout: float = 600, check: bool = True) -> str:
        # The two files `docker compose up` reads by default, then the test's own.
        command = ["docker-compose", "-p", self.project, "-f", str(COMPOSE_FILE)]
        command += ["-f", str(COMPOSE_OVERRIDE), "-f", str(self.folder / "override.yml")]
        command += ["--env-file", str(self.folder / "env"), *args]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, cwd=PROJECT_DIR
        )
        assert done.returncode == 0 or not check, f"{' '.join(args)}: {done.stderr[-3000:]}"
        return done.stdout

    def containers(self, service: str) -> list[str]:
        return self.compose("ps", "-q", service).split()

    @property
    def mlflow_url(self) -> str:
        return f"http://127.0.0.1:{self.env['MLFLOW_PORT']}"

    def versions_of(self, run_id: str) -> list:
        client = MlflowClient(self.mlflow_url)
        query = f"name = 'price-category' and tags.pipeline_run_id = '{run_id}'"
        return list(client.search_model_versions(query))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeStack]:
    build_offline_images()
    folder = tmp_path_factory.mktemp("compose")
    env = stack_secrets("GATEWAY_PORT", "MLFLOW_PORT", "DASHBOARD_PORT")
    (folder / "env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    processes.use_mlflow_login(env["MLFLOW_TRACKING_PASSWORD"])  # this test's MLflow client
    config_override(folder, version="3.8")
    compose = ComposeStack(folder, env, project=f"pctest{os.urandom(4).hex()}")
    compose.write_grid(FAST_GRID)
    try:
        yield compose
    finally:
        compose.compose("down", "-v", "--remove-orphans", "-t", "5", timeout=300, check=False)


def run_ids(stack: ComposeStack) -> set[str]:
    return {run["run_id"] for run in requests.get(f"{stack.url}/runs", timeout=10).json()["runs"]}


def test_up_from_empty_volumes_ends_with_a_champion_served(stack: ComposeStack):
    started = time.monotonic()
    stack.compose("up", "-d", timeout=900)
    # Every gateway process, not just the first to load it: each request goes to either.
    wait_until(stack.served_by_every_process, 600, "a first champion served")
    print(f"up to first champion served: {time.monotonic() - started:.0f} s")  # noqa: T201

    reply = requests.post(f"{stack.url}/predict", json=CHALLENGE_EXAMPLE, timeout=10)
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert answer["price_category"] in ("Low", "Mid", "High", "Lux")
    assert answer["model_version"] == "1"  # the bootstrap trained exactly one
    bootstrap = docker("inspect", "-f", "{{.State.ExitCode}}", *stack.containers("bootstrap"))
    assert bootstrap.split() == ["0"]
    # MLflow behind its login: 401 without it, the stack's account from .env let in.
    search = f"{stack.mlflow_url}/api/2.0/mlflow/registered-models/search"
    assert requests.get(search, timeout=10).status_code == 401
    login = ("price-category", stack.env["MLFLOW_TRACKING_PASSWORD"])
    assert requests.get(search, auth=login, timeout=10).status_code == 200


def test_three_training_containers_share_a_retrains_candidates(stack: ComposeStack):
    stack.write_grid(SCALE_GRID)
    assert stack.timed_retrain("retrain, 1 training container")["state"] == "finished"
    stack.compose("up", "-d", "--no-recreate", "--scale", "worker-train=3")
    stack.wait_for_workers("worker-train", 3)

    run = stack.timed_retrain("retrain, 3 training containers")

    assert run["state"] == "finished", json.dumps(run["stages"])
    hosts = {candidate["host"] for candidate in run["candidates"].values()}
    train_hosts = {hostname(container) for container in stack.containers("worker-train")}
    assert hosts == train_hosts and len(hosts) == 3


def test_a_training_container_killed_mid_fit_costs_nothing(stack: ComposeStack):
    stack.write_grid(fresh_slow_grid())
    run_id = stack.retrain(reason="kill a trainer", force=True)

    def fitting_host() -> str | None:
        candidate = stack.run(run_id)["candidates"].get("slow_rf") or {}
        return candidate.get("host") if candidate.get("state") == "started" else None

    wait_until(lambda: fitting_host() is not None, 180, "the slow candidate fitting")
    by_host = {hostname(c): c for c in stack.containers("worker-train")}
    victim = by_host[fitting_host()]
    # As the kernel's OOM killer or a crash would: SIGKILL to the container's first process
    # (its worker; the work-horse dies with the namespace). `docker kill` would count as a
    # stop by hand, after which `restart: unless-stopped` rightly leaves a container down.
    os.kill(int(docker("inspect", "-f", "{{.State.Pid}}", victim)), signal.SIGKILL)

    run = stack.wait_for_run(run_id)
    assert run["state"] == "finished", json.dumps(run["stages"])
    assert run["candidates"]["slow_rf"]["attempts"] >= 2  # the kill was met, and survived
    assert len(stack.versions_of(run_id)) == 1
    state = docker("inspect", "-f", "{{.State.Running}} {{.RestartCount}}", victim).split()
    assert state[0] == "true" and int(state[1]) >= 1  # the restart policy brought it back


def test_down_and_up_keeps_the_champion_its_runs_and_the_queue(stack: ComposeStack):
    version = stack.served_version()
    earlier = run_ids(stack)
    # A run left waiting in the prep queue: nobody takes it until the stack is back.
    stack.compose("up", "-d", "--no-recreate", "--scale", "worker-prep=0")
    stack.write_grid(FAST_GRID)
    waiting = stack.retrain(reason="queued across a restart", force=True)

    stack.compose("down", "-t", "10")
    stack.compose("up", "-d", "--scale", "worker-prep=0", timeout=900)
    wait_until(lambda: stack.served_version() == version, 300, f"version {version} served again")

    assert earlier <= run_ids(stack)
    assert stack.run(waiting)["state"] == "queued"
    stack.compose("up", "-d", "--no-recreate", "--scale", "worker-prep=1")
    assert stack.wait_for_run(waiting)["state"] == "finished"


def test_down_with_volumes_leaves_nothing_behind(stack: ComposeStack):
    stack.compose("down", "-v", "--remove-orphans", "-t", "10")
    assert leftovers(f"com.docker.compose.project={stack.project}") == {
        "containers": "",
        "networks": "",
        "volumes": "",
    }
