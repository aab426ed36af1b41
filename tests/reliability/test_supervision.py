"""`make run` keeps its processes up: Redis, MLflow, the gunicorn master and the front (nginx)
each killed with SIGKILL come back on their own, predictions resume, and a retrain afterwards
finishes."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import redis
import requests

from services.stack import processes
from shared.contracts import CHALLENGE_EXAMPLE
from shared.settings import MLFLOW_USERNAME, PROJECT_DIR
from tests.integration.conftest import write_pipeline_config
from tests.reliability.faults import QUICK_GRID

pytestmark = pytest.mark.reliability
# The program each killed process runs, and the name the runner's log gives it.
PROCESSES = {
    "mlflow": "mlflow server",
    "redis-server": "redis-server",
    "gunicorn": "gateway (gunicorn)",
    "nginx:": "front (nginx)",  # nginx's master names itself "nginx: master process ..."
}


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except FileNotFoundError:
        return ""


def child_running(runner: subprocess.Popen, program: str) -> int | None:
    """The runner's child that runs program (after the interpreter, for Python programs)."""
    for pid in processes.children(runner.pid):
        if program in [Path(word).name for word in command_line(pid).split()[:2]]:
            return pid
    return None


class LocalStack:
    """`python -m services.stack` (what `make run` runs) on free ports and a state of its own."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ports = {name: processes.free_port() for name in ("REDIS", "MLFLOW", "GATEWAY")}
        self.url = f"http://127.0.0.1:{self.ports['GATEWAY']}"
        write_pipeline_config(folder / "pipeline.yaml", QUICK_GRID, folder / "processed")
        env = {f"{name}_PORT": str(port) for name, port in self.ports.items()}
        env |= {
            "STATE_DIR": str(folder / "state"),
            "PRICE_CATEGORY_PIPELINE_CONFIG": str(folder / "pipeline.yaml"),
        }
        self.log = (folder / "runner.log").open("wb")
        self.runner = subprocess.Popen(
            [sys.executable, "-m", "services.stack"],
            cwd=PROJECT_DIR,
            env={**os.environ, **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def token(self) -> str:
        return json.loads((self.folder / "state" / "secrets.json").read_text())["RETRAIN_TOKEN"]

    def output(self) -> str:
        return (self.folder / "runner.log").read_text()

    def predicts(self) -> bool:
        reply = requests.post(f"{self.url}/predict", json=CHALLENGE_EXAMPLE, timeout=5)
        return reply.status_code == 200

    def ready(self) -> bool:
        return requests.get(f"{self.url}/health/ready", timeout=5).status_code == 200

    def stop(self) -> None:
        self.runner.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            self.runner.wait(60)
        except subprocess.TimeoutExpired:
            self.runner.send_signal(signal.SIGUSR1)  # the runner writes its threads' stacks
            time.sleep(1)
            output = self.output()[-6000:]
            raise AssertionError(f"make run did not stop within 60 s:\n{output}") from None
        finally:
            processes.stop(self.runner)
            self.log.close()


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    stack = LocalStack(tmp_path_factory.mktemp("make-run"))
    try:
        processes.wait_until(
            lambda: "Ctrl-C stops everything" in stack.output(),
            400,
            "make run's banner",
            stack.runner,
        )
        yield stack
    finally:
        stack.stop()


def process_tree(pid: int) -> list[int]:
    return [pid, *(p for child in processes.children(pid) for p in process_tree(child))]


def listening_ports(pids: list[int]) -> set[int]:
    ports = set()
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):  # a work-horse may end meanwhile
            for connection in psutil.Process(pid).net_connections(kind="inet"):
                if connection.status == psutil.CONN_LISTEN:
                    ports.add(connection.laddr.port)
    return ports


def test_secrets_stay_off_command_lines_and_redis_needs_its_password(local_stack: LocalStack):
    stack = local_stack
    state = stack.folder / "state"
    generated = json.loads((state / "secrets.json").read_text())
    assert set(generated) == {
        "RETRAIN_TOKEN",
        "DASHBOARD_PASSWORD",
        "REDIS_PASSWORD",
        "MLFLOW_TRACKING_PASSWORD",
    }
    assert state.stat().st_mode & 0o777 == 0o700  # secrets, logs, Redis' data: ours alone
    # What `ps` shows every user of the host: no process of the stack carries a secret.
    command_lines = [command_line(pid) for pid in process_tree(stack.runner.pid)]
    assert len(command_lines) > 8  # Redis, MLflow, 3 workers, gunicorn, nginx and children
    for secret in generated.values():
        assert not [line for line in command_lines if secret in line]
    # On TCP, only Redis (password), MLflow and the front listen: gunicorn is on a unix socket
    # in the state folder, where no other user reaches it around the front.
    assert listening_ports(process_tree(stack.runner.pid)) == set(stack.ports.values())
    # Without the password, Redis answers nothing: no job can be written into a queue.
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(port=stack.ports["REDIS"], socket_timeout=5).ping()
    # Nor does MLflow without its login: the stack's account (its password generated, unless
    # the environment gives one, as this test's does when it started a stack before).
    search = f"http://127.0.0.1:{stack.ports['MLFLOW']}/api/2.0/mlflow/experiments/search"
    assert requests.get(search, params={"max_results": 1}, timeout=10).status_code == 401
    password = os.environ.get("MLFLOW_TRACKING_PASSWORD") or generated["MLFLOW_TRACKING_PASSWORD"]
    login = (MLFLOW_USERNAME, password)
    assert requests.get(search, params={"max_results": 1}, auth=login, timeout=10).ok
    password = generated["REDIS_PASSWORD"]
    assert redis.Redis(port=stack.ports["REDIS"], password=password, socket_timeout=5).ping()


def test_killed_backing_services_and_gateway_come_back_and_a_retrain_finishes(
    local_stack: LocalStack,
):
    stack = local_stack
    assert stack.predicts()
    for program, logged_as in PROCESSES.items():
        pid = child_running(stack.runner, program)
        assert pid is not None, program
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()

        def restarted(program: str = program, pid: int = pid) -> bool:
            return child_running(stack.runner, program) not in (None, pid)

        processes.wait_until(restarted, 60, f"{program} restarted", stack.runner)
        processes.wait_until(stack.ready, 120, f"ready after {program} was killed", stack.runner)
        processes.wait_until(stack.predicts, 60, f"predicting after {program}", stack.runner)
        print(f"{program}: ready {time.monotonic() - killed_at:.1f} s after SIGKILL")  # noqa: T201
        assert f"{logged_as} exited with code -9" in stack.output()
    assert stack.runner.poll() is None  # the runner itself never gave up

    auth = {"Authorization": f"Bearer {stack.token()}"}
    accepted = requests.post(f"{stack.url}/retrain", json={"force": True}, headers=auth, timeout=30)
    assert accepted.status_code == 202, accepted.text
    status_url = f"{stack.url}{accepted.json()['status_url']}"

    def ended() -> bool:
        return requests.get(status_url, timeout=5).json()["state"] in ("finished", "failed")

    processes.wait_until(ended, 300, "the retrain after the kills")
    run = requests.get(status_url, timeout=5).json()
    assert run["state"] == "finished", run
