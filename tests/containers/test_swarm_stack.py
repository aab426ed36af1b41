"""The same docker-compose.yml on a Docker swarm, as a team that outgrew one host deploys it:
a one-node swarm initialised on this engine, `docker stack deploy` of the file as it is (no
one-host override), a first champion served, training scaled to three tasks with `docker
service scale` and a retrain's candidates fitted on three different tasks, a training task
killed in the middle of a fit and replaced by the swarm, then the stack removed and the swarm
left without a trace.

Only the test's pipeline config is added (a small grid, as the compose test has). Where the
kernel has no IPVS (this CI machine's has none: /proc/net/ip_vs is missing), a swarm's
virtual IPs and its ingress routing mesh cannot carry a packet, so the services are reached
by DNS round robin and the front's port is published on the node (`mode: host`), both settings
of the swarm rather than of the project; on a kernel with IPVS the file runs untouched.
"""

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from services.stack.processes import wait_until
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

IPVS = Path("/proc/net/ip_vs")


@dataclass
class SwarmStack(StackUnderTest):
    name: str = ""
    files: tuple[Path, ...] = ()
    joined_here: bool = False
    networks_before: frozenset[str] = frozenset()

    def service(self, name: str) -> str:
        return f"{self.name}_{name}"

    def deploy(self) -> str:
        """`docker stack deploy`: the secrets from the environment, as a swarm takes them."""
        command = ["docker", "stack", "deploy", "--prune"]
        command += [arg for path in self.files for arg in ("-c", str(path))]
        done = subprocess.run(
            [*command, self.name],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=PROJECT_DIR,
            env=os.environ | self.env,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout + done.stderr

    def containers(self, service: str) -> list[str]:
        """The running containers of the service's tasks on this node."""
        label = f"label=com.docker.swarm.service.name={self.service(service)}"
        return docker("ps", "-q", "--filter", label).split()

    def task_states(self, service: str) -> str:
        """Each task's state, newest first, a line each ("Running 5 seconds ago", ...)."""
        return docker("service", "ps", "--format", "{{.CurrentState}}", self.service(service))

    def leftovers(self) -> dict[str, str]:
        """Containers, networks and volumes of the stack still there."""
        return leftovers(f"com.docker.stack.namespace={self.name}")

    def remove(self) -> None:
        """The stack, then its volumes once its containers are gone (a swarm removes them a
        moment after the services), then the swarm if this test made it."""
        if swarm_state() == "active":
            docker("stack", "rm", self.name)
        for kind in ("containers", "networks"):
            wait_until(lambda: not self.leftovers()[kind], 120, f"the stack's {kind} gone")  # noqa: B023
        for volume in self.leftovers()["volumes"].split():
            docker("volume", "rm", volume)
        if self.joined_here and swarm_state() == "active":
            docker("swarm", "leave", "--force")
            # The bridge a swarm makes for its containers' outside traffic stays behind it.
            for network in set(network_names()) - self.networks_before:
                docker("network", "rm", network)


def network_names() -> list[str]:
    return docker("network", "ls", "--format", "{{.Name}}").split()


def swarm_state() -> str:
    return docker("info", "-f", "{{.Swarm.LocalNodeState}}").strip()


def without_ipvs(folder: Path, port: str) -> Path:
    """Services reached by DNS round robin and the front published on its node: what a swarm
    can do on a kernel without IPVS."""
    names = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    services = {name: {"deploy": {"endpoint_mode": "dnsrr"}} for name in names}
    services["front"]["ports"] = [{"target": 8000, "published": int(port), "mode": "host"}]
    path = folder / "no-ipvs.yml"
    path.write_text(yaml.safe_dump({"services": services}))
    return path


@pytest.fixture(scope="module")
def swarm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwarmStack]:
    build_offline_images()
    assert swarm_state() in ("inactive", "active"), f"this engine's swarm is {swarm_state()}"
    joined_here = swarm_state() == "inactive"
    networks_before = frozenset(network_names())
    if joined_here:
        docker("swarm", "init", "--advertise-addr", "127.0.0.1")
    folder = tmp_path_factory.mktemp("swarm")
    files = [COMPOSE_FILE, config_override(folder)]
    env = stack_secrets("GATEWAY_PORT")
    if not IPVS.exists():
        files.append(without_ipvs(folder, env["GATEWAY_PORT"]))
    stack = SwarmStack(
        folder,
        env,
        name=f"pcswarm{os.urandom(3).hex()}",
        files=tuple(files),
        joined_here=joined_here,
        networks_before=networks_before,
    )
    stack.write_grid(FAST_GRID)
    try:
        yield stack
    finally:
        stack.remove()  # again after the last test's: nothing left is a no-op


def test_the_compose_file_deploys_on_a_swarm_to_a_served_champion(swarm: SwarmStack):
    started = time.monotonic()
    output = swarm.deploy()
    assert "Creating service" in output
    wait_until(swarm.served_by_every_process, 600, "a first champion served on the swarm")
    print(f"deploy to first champion served: {time.monotonic() - started:.0f} s")  # noqa: T201

    assert swarm.served_version() == "1"  # the bootstrap trained exactly one
    # The one-shot ends well once its run has (explaining goes on after the promotion), and
    # the swarm does not start it again.
    wait_until(
        lambda: not swarm.task_states("bootstrap").startswith("Running"), 300, "bootstrap ended"
    )
    states = swarm.task_states("bootstrap").splitlines()
    assert len(states) == 1 and states[0].startswith("Complete"), states
    # The file's limits and policies are the swarm's.
    spec = json.loads(docker("service", "inspect", swarm.service("worker-train")))[0]["Spec"]
    assert spec["TaskTemplate"]["Resources"]["Limits"]["MemoryBytes"] == 3 * 1024**3
    assert spec["TaskTemplate"]["RestartPolicy"]["Condition"] == "any"
    assert spec["Mode"]["Replicated"]["Replicas"] == 1
    # MLflow behind its login on the overlay too: from a gateway task, 401 without it.
    probe = (
        "import sys, urllib.request, urllib.error\n"
        "try: urllib.request.urlopen('http://mlflow:5000/api/2.0/mlflow/registered-models/search')\n"
        "except urllib.error.HTTPError as e: sys.exit(0 if e.code == 401 else e.code)\n"
        "sys.exit(1)"
    )
    gateway = swarm.containers("gateway")[0]
    assert docker("exec", gateway, "python", "-c", probe) == ""


def test_three_training_tasks_share_a_retrains_candidates(swarm: SwarmStack):
    swarm.write_grid(SCALE_GRID)
    assert swarm.timed_retrain("retrain, 1 worker-train replica")["state"] == "finished"
    docker("service", "scale", "--detach", f"{swarm.service('worker-train')}=3")
    swarm.wait_for_workers("worker-train", 3)

    run = swarm.timed_retrain("retrain, 3 worker-train replicas")

    assert run["state"] == "finished", json.dumps(run["stages"])
    hosts = {candidate["host"] for candidate in run["candidates"].values()}
    tasks = {
        hostname(container): docker(
            "inspect", "-f", '{{index .Config.Labels "com.docker.swarm.task.id"}}', container
        ).strip()
        for container in swarm.containers("worker-train")
    }
    assert len(hosts) == 3 and hosts <= set(tasks), (hosts, tasks)
    assert len({tasks[host] for host in hosts}) == 3  # three swarm tasks, one candidate each


def test_a_training_task_killed_mid_fit_is_replaced_and_costs_nothing(swarm: SwarmStack):
    swarm.write_grid(fresh_slow_grid())
    run_id = swarm.retrain(reason="kill a training task", force=True)

    def fitting_host() -> str | None:
        candidate = swarm.run(run_id)["candidates"].get("slow_rf") or {}
        return candidate.get("host") if candidate.get("state") == "started" else None

    wait_until(lambda: fitting_host() is not None, 180, "the slow candidate fitting")
    victim = {hostname(c): c for c in swarm.containers("worker-train")}[fitting_host()]
    # As the OOM killer or a crash would: SIGKILL to the task's first process, its worker.
    os.kill(int(docker("inspect", "-f", "{{.State.Pid}}", victim)), signal.SIGKILL)

    run = swarm.wait_for_run(run_id)
    assert run["state"] == "finished", json.dumps(run["stages"])
    assert run["candidates"]["slow_rf"]["attempts"] >= 2  # the kill was met, and survived
    # The restart policy: a new task in the dead one's place, three running again.
    wait_until(lambda: len(swarm.containers("worker-train")) == 3, 120, "3 training tasks")
    assert victim not in swarm.containers("worker-train")
    assert "Failed" in swarm.task_states("worker-train")


def test_removing_the_stack_and_leaving_the_swarm_leaves_nothing(swarm: SwarmStack):
    swarm.remove()
    assert swarm.leftovers() == {"containers": "", "networks": "", "volumes": ""}
    if swarm.joined_here:
        assert swarm_state() == "inactive"
        assert set(network_names()) == swarm.networks_before
