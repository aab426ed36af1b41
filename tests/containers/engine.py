"""What the container tests share: the real engine and its images, a stack's secrets, and the
gateway as a client sees it, whichever way the stack was started (compose or a swarm)."""

import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml

from services.stack.processes import free_port, wait_until
from shared.contracts import CHALLENGE_EXAMPLE
from shared.settings import PROJECT_DIR
from tests.integration.conftest import write_pipeline_config

COMPOSE_FILE = PROJECT_DIR / "docker-compose.yml"
OFFLINE_IMAGES = {
    "BASE_IMAGE": "price-category/base:bookworm",
    "REDIS_IMAGE": "price-category/redis:bookworm",
    "POSTGRES_IMAGE": "price-category/postgres:15",
    "NGINX_IMAGE": "price-category/nginx:bookworm",
}
APP_SERVICES = ("gateway", "bootstrap", "worker-prep", "worker-train", "worker-explain")
# Three candidates of a few seconds each: three idle training workers take one each.
SCALE_GRID = [
    {
        "name": f"forest_{seed}",
        "estimator": "random_forest",
        "features": "notebook",
        "params": {"n_estimators": 150, "random_state": seed, "n_jobs": 1},
    }
    for seed in (11, 12, 13)
]


def docker(*args: str, timeout: float = 120) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"docker {' '.join(args)}: {done.stderr[-2000:]}"
    return done.stdout


def container_log(container: str) -> str:
    """What the container printed, both streams (RQ logs to standard error)."""
    done = subprocess.run(["docker", "logs", container], capture_output=True, text=True, timeout=30)
    return done.stdout + done.stderr


def leftovers(label: str) -> dict[str, str]:
    """Containers, networks and volumes labelled label (key=value) still there."""
    return {
        kind: docker(*command, "--filter", f"label={label}", "-q").strip()
        for kind, command in {
            "containers": ("ps", "-a"),
            "networks": ("network", "ls"),
            "volumes": ("volume", "ls"),
        }.items()
    }


def hostname(container: str) -> str:
    """The name a candidate record gives as its host: the container's hostname."""
    return docker("inspect", "-f", "{{.Config.Hostname}}", container).strip()


def build_offline_images() -> None:
    """A real engine, and every image built from Debian's and PyPI's packages alone."""
    for program in ("docker", "docker-compose", "debootstrap"):
        assert shutil.which(program), f"{program} is missing: .ci/run installs it"
    info = subprocess.run(["docker", "info"], capture_output=True, text=True)
    assert info.returncode == 0, f"no Docker engine answers (.ci/run starts dockerd): {info.stderr}"
    subprocess.run([str(PROJECT_DIR / "deploy" / "offline-images.sh")], check=True, timeout=1800)


def stack_secrets(*ports: str) -> dict[str, str]:
    """Fresh secrets for one stack, the offline images, and free ports for what it publishes."""
    return {
        **OFFLINE_IMAGES,
        **{
            name: secrets.token_urlsafe(18)
            for name in ("REDIS_PASSWORD", "POSTGRES_PASSWORD", "MLFLOW_TRACKING_PASSWORD")
        },
        "RETRAIN_TOKEN": secrets.token_urlsafe(18),
        "DASHBOARD_USER": "ops",
        "DASHBOARD_PASSWORD": secrets.token_urlsafe(18),
        **{name: str(free_port()) for name in ports},
    }


def config_override(folder: Path, version: str | None = None) -> Path:
    """A compose file that points the app services at the test's pipeline config, a folder
    beside it the containers read (workers read it afresh for every job)."""
    (folder / "config").mkdir(mode=0o755, exist_ok=True)
    folder.chmod(0o755)  # the containers' user reads the mounted config
    service = {
        "environment": {"PRICE_CATEGORY_PIPELINE_CONFIG": "/app/test-config/pipeline.yaml"},
        "volumes": [f"{folder / 'config'}:/app/test-config:ro"],
    }
    override: dict[str, Any] = {"services": {name: service for name in APP_SERVICES}}
    if version:
        override = {"version": version, **override}
    path = folder / "override.yml"
    path.write_text(yaml.safe_dump(override))
    return path


@dataclass
class StackUnderTest:
    """A running stack as its users reach it: the front on GATEWAY_PORT, the token, the grid."""

    folder: Path
    env: dict[str, str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.env['GATEWAY_PORT']}"

    @property
    def token(self) -> str:
        return self.env["RETRAIN_TOKEN"]

    def containers(self, service: str) -> list[str]:
        raise NotImplementedError

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

    def timed_retrain(self, reason: str) -> dict[str, Any]:
        """A forced retrain followed to its end; the time it took printed for the record."""
        started = time.monotonic()
        run = self.wait_for_run(self.retrain(reason=reason, force=True))
        print(f"{reason}: {time.monotonic() - started:.1f} s")  # noqa: T201 - for the record
        return run

    def served_version(self) -> str | None:
        try:
            reply = requests.post(f"{self.url}/predict", json=CHALLENGE_EXAMPLE, timeout=10)
        except requests.RequestException:
            return None
        return str(reply.json()["model_version"]) if reply.status_code == 200 else None

    def served_by_every_process(self, answers: int = 20) -> bool:
        """Twenty answers in a row from a served model: with two gunicorn processes taking
        requests in turn, a process still without it would have answered one of them."""
        return all(self.served_version() is not None for _ in range(answers))
