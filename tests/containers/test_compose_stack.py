"""The compose stack on a real Docker engine, as a user runs it: images built where no registry
is reachable (deploy/offline-images.sh), brought up from empty volumes to a served champion,
training scaled over three containers, a training container killed in the middle of a fit,
taken down and brought back, and removed without a trace.

The steps run in order on one stack (each needs the one before); the module's fixture takes
the stack down with its volumes whatever happens.
"""

import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from mlflow import MlflowClient

from services.stack.processes import free_port, wait_until
from shared.contracts import CHALLENGE_EXAMPLE
from shared.settings import PROJECT_DIR
from tests.integration.conftest import FAST_GRID, write_pipeline_config
from tests.reliability.faults import fresh_slow_grid

pytestmark = pytest.mark.containers

COMPOSE_FILE = PROJECT_DIR / "docker-compose.yml"
OFFLINE_IMAGES = {
    "BASE_IMAGE": "price-category/base:bookworm",
    "REDIS_IMAGE": "price-category/redis:bookworm",
    "POSTGRES_IMAGE": "price-category/postgres:15",
    "NGINX_IMAGE": "price-category/nginx:bookworm",
}
APP_SERVICES = ("gateway", "bootstrap", "worker-prep", "worker-train", "worker-explain")
# Three candidates of a few seconds each: three idle training containers take one each.
SCALE_GRID = [
    {
        "name": f"forest_{seed}",
        "estimator": "random_forest",
        "features": "notebook",
        "params": {"n_estimators": 150, "random_state": seed, "n_jobs": 1},
    }
    for seed in (11, 12, 13)
]


@dataclass
class ComposeStack:
    project: str
    folder: Path
    env: dict[str, str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.env['GATEWAY_PORT']}"

    @property
    def token(self) -> str:
        return self.env["RETRAIN_TOKEN"]

    def compose(self, *args: str, timeout: float = 600, check: bool = True) -> str:
        command = ["docker-compose", "-p", self.project, "-f", str(COMPOSE_FILE)]
        command += ["-f", str(self.folder / "override.yml")]
        command += ["--env-file", str(self.folder / "env"), *args]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, cwd=PROJECT_DIR
        )
        assert done.returncode == 0 or not check, f"{' '.join(args)}: {done.stderr[-3000:]}"
        return done.stdout

    def containers(self, service: str) -> list[str]:
        return self.compose("ps", "-q", service).split()

    def wait_for_workers(self, service: str, count: int) -> None:
        """Until count containers of the service run an RQ worker that takes jobs."""

        def listening() -> int:
            return sum("Listening on" in container_log(c) for c in self.containers(service))

        wait_until(lambda: listening() == count, 120, f"{count} {service} listening")

    def write_grid(self, candidates: list[dict]) -> None:
        """The grid every app container reads (workers read it afresh for every job)."""
        write_pipeline_config(
            self.folder / "config" / "pipeline.yaml", candidates, Path("/app/data/processed")
        )
        (self.folder / "config" / "pipeline.yaml").chmod(0o644)

    def retrain(self, **body: Any) -> str:
        headers = {"Authorization": f"Bearer {self.token}"}
        reply = requests.post(f"{self.url}/retrain", json=body, headers=headers, timeout=30)
        assert reply.status_code == 202, reply.text
        return str(reply.json()["run_id"])

    def run(self, run_id: str) -> dict[str, Any]:
        reply = requests.get(f"{self.url}/runs/{run_id}", timeout=10)
        reply.raise_for_status()
        return dict(reply.json())

    def wait_for_run(self, run_id: str, timeout: float = 420) -> dict[str, Any]:
        wait_until(lambda: self.run(run_id)["state"] in ("finished", "failed"), timeout, run_id)
        return self.run(run_id)

    def versions_of(self, run_id: str) -> list:
        client = MlflowClient(f"http://127.0.0.1:{self.env['MLFLOW_PORT']}")
        query = f"name = 'price-category' and tags.pipeline_run_id = '{run_id}'"
        return list(client.search_model_versions(query))


def docker(*args: str, timeout: float = 120) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"docker {' '.join(args)}: {done.stderr[-2000:]}"
    return done.stdout


def container_log(container: str) -> str:
    """What the container printed, both streams (RQ logs to standard error)."""
    done = subprocess.run(["docker", "logs", container], capture_output=True, text=True, timeout=30)
    return done.stdout + done.stderr


def leftovers(project: str) -> dict[str, str]:
    """Containers, networks and volumes compose made for the project and left behind."""
    label = f"label=com.docker.compose.project={project}"
    return {
        kind: docker(*command, "--filter", label, "-q").strip()
        for kind, command in {
            "containers": ("ps", "-a"),
            "networks": ("network", "ls"),
            "volumes": ("volume", "ls"),
        }.items()
    }


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeStack]:
    for program in ("docker", "docker-compose", "debootstrap"):
        assert shutil.which(program), f"{program} is missing: .ci/run installs it"
    info = subprocess.run(["docker", "info"], capture_output=True, text=True)
    assert info.returncode == 0, f"no Docker engine answers (.ci/run starts dockerd): {info.stderr}"
    subprocess.run([str(PROJECT_DIR / "deploy" / "offline-images.sh")], check=True, timeout=1800)

    folder = tmp_path_factory.mktemp("compose")
    folder.chmod(0o755)  # the containers' user reads the mounted config
    env = {
        **OFFLINE_IMAGES,
        **{name: secrets.token_urlsafe(18) for name in ("REDIS_PASSWORD", "POSTGRES_PASSWORD")},
        "RETRAIN_TOKEN": secrets.token_urlsafe(18),
        "DASHBOARD_USER": "ops",
        "DASHBOARD_PASSWORD": secrets.token_urlsafe(18),
        **{name: str(free_port()) for name in ("GATEWAY_PORT", "MLFLOW_PORT", "DASHBOARD_PORT")},
    }
    (folder / "env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    test_config = {
        "environment": {"PRICE_CATEGORY_PIPELINE_CONFIG": "/app/test-config/pipeline.yaml"},
        "volumes": [f"{folder / 'config'}:/app/test-config:ro"],
    }
    override = {"version": "3.8", "services": {name: test_config for name in APP_SERVICES}}
    (folder / "override.yml").write_text(yaml.safe_dump(override))
    compose = ComposeStack(f"pctest{secrets.token_hex(4)}", folder, env)
    compose.write_grid(FAST_GRID)
    (folder / "config").chmod(0o755)
    try:
        yield compose
    finally:
        compose.compose("down", "-v", "--remove-orphans", "-t", "5", timeout=300, check=False)


def served_version(stack: ComposeStack) -> str | None:
    try:
        reply = requests.post(f"{stack.url}/predict", json=CHALLENGE_EXAMPLE, timeout=10)
    except requests.RequestException:
        return None
    return str(reply.json()["model_version"]) if reply.status_code == 200 else None


def served_by_every_process(stack: ComposeStack, answers: int = 20) -> bool:
    """Twenty answers in a row from a served model: with two gunicorn processes taking requests
    in turn, a process still without it would have answered one of them."""
    return all(served_version(stack) is not None for _ in range(answers))


def run_ids(stack: ComposeStack) -> set[str]:
    return {run["run_id"] for run in requests.get(f"{stack.url}/runs", timeout=10).json()["runs"]}


def test_up_from_empty_volumes_ends_with_a_champion_served(stack: ComposeStack):
    started = time.monotonic()
    stack.compose("up", "-d", timeout=900)
    # Every gateway process, not just the first to load it: each request goes to either.
    wait_until(lambda: served_by_every_process(stack), 600, "a first champion served")
    print(f"up to first champion served: {time.monotonic() - started:.0f} s")  # noqa: T201

    reply = requests.post(f"{stack.url}/predict", json=CHALLENGE_EXAMPLE, timeout=10)
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert answer["price_category"] in ("Low", "Mid", "High", "Lux")
    assert answer["model_version"] == "1"  # the bootstrap trained exactly one
    bootstrap = docker("inspect", "-f", "{{.State.ExitCode}}", *stack.containers("bootstrap"))
    assert bootstrap.split() == ["0"]


def timed_retrain(stack: ComposeStack, reason: str) -> dict[str, Any]:
    started = time.monotonic()
    run = stack.wait_for_run(stack.retrain(reason=reason, force=True))
    print(f"{reason}: {time.monotonic() - started:.1f} s")  # noqa: T201 - for the record
    return run


def test_three_training_containers_share_a_retrains_candidates(stack: ComposeStack):
    stack.write_grid(SCALE_GRID)
    assert timed_retrain(stack, "retrain, 1 training container")["state"] == "finished"
    stack.compose("up", "-d", "--no-recreate", "--scale", "worker-train=3")
    stack.wait_for_workers("worker-train", 3)

    run = timed_retrain(stack, "retrain, 3 training containers")

    assert run["state"] == "finished", json.dumps(run["stages"])
    hosts = {candidate["host"] for candidate in run["candidates"].values()}
    train_hosts = {
        docker("inspect", "-f", "{{.Config.Hostname}}", container).strip()
        for container in stack.containers("worker-train")
    }
    assert hosts == train_hosts and len(hosts) == 3


def test_a_training_container_killed_mid_fit_costs_nothing(stack: ComposeStack):
    stack.write_grid(fresh_slow_grid())
    run_id = stack.retrain(reason="kill a trainer", force=True)

    def fitting_host() -> str | None:
        candidate = stack.run(run_id)["candidates"].get("slow_rf") or {}
        return candidate.get("host") if candidate.get("state") == "started" else None

    wait_until(lambda: fitting_host() is not None, 180, "the slow candidate fitting")
    by_host = {
        docker("inspect", "-f", "{{.Config.Hostname}}", c).strip(): c
        for c in stack.containers("worker-train")
    }
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
    version = served_version(stack)
    earlier = run_ids(stack)
    # A run left waiting in the prep queue: nobody takes it until the stack is back.
    stack.compose("up", "-d", "--no-recreate", "--scale", "worker-prep=0")
    stack.write_grid(FAST_GRID)
    waiting = stack.retrain(reason="queued across a restart", force=True)

    stack.compose("down", "-t", "10")
    stack.compose("up", "-d", "--scale", "worker-prep=0", timeout=900)
    wait_until(lambda: served_version(stack) == version, 300, f"version {version} served again")

    assert earlier <= run_ids(stack)
    assert stack.run(waiting)["state"] == "queued"
    stack.compose("up", "-d", "--no-recreate", "--scale", "worker-prep=1")
    assert stack.wait_for_run(waiting)["state"] == "finished"


def test_down_with_volumes_leaves_nothing_behind(stack: ComposeStack):
    stack.compose("down", "-v", "--remove-orphans", "-t", "10")
    assert leftovers(stack.project) == {"containers": "", "networks": "", "volumes": ""}
