"""docker-compose.yml, checked without a Docker engine: services, health, secrets, commands,
and that a swarm takes the same file (the one-host extras live in docker-compose.override.yml).

Each service's command must be one the local runner and the integration tests really start
(services/stack/processes.py), the same entry point and arguments apart from hosts, ports,
folders and secrets.
"""

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from services.stack import processes
from services.stack.front import TEMPLATE as FRONT_TEMPLATE
from shared.settings import PROJECT_DIR, Settings

COMPOSE = PROJECT_DIR / "docker-compose.yml"
OVERRIDE = PROJECT_DIR / "docker-compose.override.yml"
SECRETS = (
    "REDIS_PASSWORD",
    "POSTGRES_PASSWORD",
    "MLFLOW_TRACKING_PASSWORD",
    "RETRAIN_TOKEN",
    "DASHBOARD_USER",
    "DASHBOARD_PASSWORD",
)
SERVERS = ("redis", "postgres", "mlflow", "gateway", "front", "rq-dashboard")
WORKERS = {
    "worker-prep": "prep",
    "worker-train": "train",
    "worker-explain": "explain",
    "worker-monitor": "monitor",
}
# Values that differ between a container and a local process: replaced before comparing.
PLACES = (
    "--bind",
    "--host",
    "--port",
    "--dir",
    "--artifacts-destination",
    "--allowed-hosts",
)


STATEFUL = ("redis", "postgres", "mlflow", "worker-monitor")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def override() -> dict:
    return yaml.safe_load(OVERRIDE.read_text())


def normalise(command: list[str]) -> list[str]:
    """argv with the program's folder dropped, `sh -c "exec ..."` unwrapped, places blanked."""
    if command[:2] == ["sh", "-c"]:
        command = shlex.split(command[2])
    if "|" in command:  # a secret printed into the command's standard input: the command
        command = command[len(command) - command[::-1].index("|") :]
    if command[0] == "exec":
        command = command[1:]
    out = [Path(command[0]).name]
    for previous, word in zip(command, command[1:], strict=False):
        out.append("<place>" if previous in PLACES else word)
    return out


def test_every_service_is_there(compose):
    assert set(compose["services"]) == {*SERVERS, *WORKERS, "mlflow-migrate", "bootstrap"}


def test_a_first_champion_is_trained_once_by_a_one_shot_service(compose):
    bootstrap = compose["services"]["bootstrap"]
    # It waits for the gateway and MLflow itself (test_bootstrap): no start condition needed.
    assert bootstrap["command"] == ["python", "-m", "services.stack.bootstrap"]
    assert bootstrap["environment"]["GATEWAY_URL"] == "http://gateway:8000"
    assert bootstrap["restart"] == "no"  # one-shot: it ends once a champion is served
    assert bootstrap["deploy"]["restart_policy"]["condition"] == "on-failure"  # a swarm's too


def test_images_can_come_from_anywhere(compose):
    """Where no registry is reachable, deploy/offline-images.sh's images replace each one."""
    services = compose["services"]
    assert services["redis"]["image"].startswith("${REDIS_IMAGE:-")
    assert services["postgres"]["image"].startswith("${POSTGRES_IMAGE:-")
    assert services["front"]["build"]["args"]["NGINX_IMAGE"].startswith("${NGINX_IMAGE:-")
    for name, service in services.items():
        if "build" in service and name != "front":
            assert service["build"]["args"]["BASE_IMAGE"] == "${BASE_IMAGE:-python:3.11-slim}", name


def test_on_one_host_dumps_dropped_in_data_raw_reach_the_gateway_and_prep(override):
    for name in ("gateway", "worker-prep"):
        assert override["services"][name]["volumes"] == ["./data/raw:/app/data/raw:ro"], name


def test_no_service_needs_a_folder_of_the_host(compose):
    """A swarm node has no checkout: named volumes only, the front's config baked in."""
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            assert volume.split(":")[0] in compose["volumes"], f"{name}: {volume}"
        assert "configs" not in service, name  # compose 1.29 ignores configs off a swarm


@pytest.mark.parametrize("name", SERVERS)
def test_servers_have_healthchecks(compose, name):
    health = compose["services"][name]["healthcheck"]
    assert health["test"] and health["interval"] and health["retries"]


def test_start_order_is_a_plain_list(compose):
    """A swarm refuses `depends_on` conditions; the services wait for what they need instead."""
    for name, service in compose["services"].items():
        assert isinstance(service.get("depends_on", []), list), name


@pytest.mark.parametrize("name", sorted({*SERVERS, *WORKERS, "bootstrap", "mlflow-migrate"}))
def test_every_service_has_a_memory_limit_and_a_swarm_restart_policy(compose, name):
    deploy = compose["services"][name]["deploy"]
    assert deploy["resources"]["limits"]["memory"]
    assert deploy["restart_policy"]["condition"] in ("any", "on-failure")


@pytest.mark.parametrize("name", STATEFUL)
def test_state_stays_on_the_node_with_its_volume(compose, name):
    deploy = compose["services"][name]["deploy"]
    assert deploy["placement"]["constraints"] == ["node.role == manager"]
    assert deploy["replicas"] == 1


@pytest.mark.parametrize("name", ["gateway", "front", *WORKERS, "rq-dashboard"])
def test_long_running_services_say_how_many_replicas(compose, name):
    assert compose["services"][name]["deploy"]["replicas"] >= 1


def test_only_the_front_is_published(compose, override):
    published = {
        name: [str(port) for port in service["ports"]]
        for name, service in compose["services"].items()
        if service.get("ports")
    }
    assert published == {"front": ["${GATEWAY_PORT:-8000}:8000"]}
    # On one host, MLflow (no login) and the standalone dashboard (its password only) are
    # published on its loopback: a swarm would publish them on every interface.
    extras = {name: s["ports"] for name, s in override["services"].items() if "ports" in s}
    assert set(extras) == {"mlflow", "rq-dashboard"}
    assert all(port.startswith("127.0.0.1:") for ports in extras.values() for port in ports)


def test_the_front_fills_the_template_the_local_stack_uses(compose):
    front = compose["services"]["front"]
    context = PROJECT_DIR / front["build"]["context"]
    copies = [
        line.split()[1:]
        for line in (context / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ")
    ]
    assert len(copies) == 1
    source, target = copies[0]
    assert (context / source).resolve() == FRONT_TEMPLATE
    assert target.startswith("/etc/nginx/templates/")  # the nginx image fills these in
    assert front["environment"]["GATEWAY_UPSTREAM"] == "gateway:8000"
    assert front["depends_on"] == ["gateway"]


def test_mlflow_upgrades_its_database_once_it_answers(compose):
    migrate = compose["services"]["mlflow-migrate"]
    assert "mlflow.db.upgrade" in migrate["command"][2]  # which waits for its database
    assert migrate["restart"] == "on-failure"  # ends once done; a swarm's policy says the same
    assert migrate["deploy"]["restart_policy"]["condition"] == "on-failure"
    assert compose["services"]["mlflow"]["depends_on"] == ["postgres", "mlflow-migrate"]


def test_workers_scale(compose):
    for service in compose["services"].values():
        assert "container_name" not in service
    for name in WORKERS:
        assert "ports" not in compose["services"][name]
        assert compose["services"][name]["restart"] == "unless-stopped"
        assert compose["services"][name]["deploy"]["restart_policy"]["condition"] == "any"


def test_named_volumes_hold_the_state(compose):
    mounts = {
        name: [v.split(":")[0] for v in s.get("volumes", [])]
        for name, s in compose["services"].items()
    }
    assert "redis-data" in mounts["redis"]
    assert "pg-data" in mounts["postgres"]
    assert "mlflow-artifacts" in mounts["mlflow"]
    assert set(compose["volumes"]) == {"redis-data", "pg-data", "mlflow-artifacts", "listings-data"}
    assert "--appendonly yes" in compose["services"]["redis"]["command"][2]


def test_redis_runs_as_the_local_runner_starts_it_bounded_and_never_evicting(compose):
    """The same flags everywhere: the append-only file, and a memory bound that fails writes
    instead of evicting a queued job, a run or a lock."""
    runner = shlex.join(processes.redis_command(6379, "/data", host="0.0.0.0"))
    assert "--maxmemory-policy noeviction" in runner
    assert compose["services"]["redis"]["command"][2].endswith(f"exec {runner}")


def test_no_secret_is_on_a_command_line(compose):
    """A process's arguments are visible to every user of the host (`ps`); its environment
    and standard input are not."""
    redis = compose["services"]["redis"]["command"][2]
    assert redis.startswith("printf 'requirepass %s\\n' \"$$REDIS_PASSWORD\" | exec redis-server -")
    for service in compose["services"].values():
        command = " ".join(service.get("command", []))
        # Variables a shell would expand into the arguments: only into printf, a builtin.
        expanded = command.replace("printf 'requirepass %s\\n' \"$$REDIS_PASSWORD\"", "")
        assert "$$" not in expanded and "${" not in expanded, command


def test_secrets_are_required_variables_never_literals(compose):
    text = COMPOSE.read_text()
    for name in SECRETS:
        assert re.search(r"\$\{" + name + r":\?[^}]+\}", text), f"{name} is not required"
    for service in compose["services"].values():
        for key, value in (service.get("environment") or {}).items():
            if any(word in key for word in ("PASSWORD", "TOKEN", "AUTH", "URI", "URL")):
                assert "${" in str(value) or value.startswith("http://"), key
    example = (PROJECT_DIR / ".env.example").read_text()
    assert all(f"{name}=" in example for name in SECRETS)
    assert ".env" in (PROJECT_DIR / ".gitignore").read_text().split()


def test_commands_are_the_ones_the_stack_and_tests_start(compose):
    services = compose["services"]
    expected = {
        "redis": processes.redis_command(0, "x"),
        "mlflow": processes.mlflow_command(0, "x"),
        "gateway": processes.gateway_command("0.0.0.0:8000", workers=2),
        "rq-dashboard": processes.dashboard_command(0),
        **{name: processes.worker_command(queue) for name, queue in WORKERS.items()},
    }
    for name, command in expected.items():
        assert normalise(services[name]["command"]) == normalise(command), name


def test_mlflow_runs_with_the_stacks_settings(compose):
    environment = compose["services"]["mlflow"]["environment"]
    assert processes.MLFLOW_SERVER_ENV.items() <= environment.items()


def test_the_image_is_slim_and_runs_as_a_user():
    dockerfile = (PROJECT_DIR / "Dockerfile").read_text()
    assert dockerfile.startswith("# ") and "ARG BASE_IMAGE=python:3.11-slim" in dockerfile
    assert "FROM ${BASE_IMAGE}" in dockerfile
    lines = dockerfile.splitlines()
    dependencies = next(i for i, line in enumerate(lines) if "requirements.lock" in line)
    assert "pip install --require-hashes" in dockerfile  # every package pinned by its hash
    first_code = next(i for i, line in enumerate(lines) if line.startswith("COPY shared"))
    assert dependencies < first_code  # dependencies stay cached while the code changes
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] != "root"


def _filled_env(tmp_path: Path, drop: str | None = None) -> Path:
    values = {name: "example-value" for name in SECRETS if name != drop}
    path = tmp_path / "env"
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return path


def _compose_config(env_file: Path) -> subprocess.CompletedProcess:
    """`docker-compose config` with only the env file's secrets, none from our environment."""
    env = {k: v for k, v in os.environ.items() if k not in SECRETS}
    command = ["docker-compose", "-f", str(COMPOSE), "-f", str(OVERRIDE)]
    command += ["--env-file", str(env_file), "config", "-q"]
    return subprocess.run(command, capture_output=True, text=True, env=env)


def _stack_config(drop: str | None = None) -> subprocess.CompletedProcess:
    """`docker stack config`: the file as `docker stack deploy` reads it (the client's own
    check, no engine needed), with the secrets in the environment as a swarm takes them."""
    env = {k: v for k, v in os.environ.items() if k not in SECRETS}
    env |= {name: "example-value" for name in SECRETS if name != drop}
    command = ["docker", "stack", "config", "-c", str(COMPOSE)]
    return subprocess.run(command, capture_output=True, text=True, env=env)


def test_a_swarm_takes_the_file_unchanged():
    assert shutil.which("docker"), "docker is missing: apt-get install docker.io (.ci/run does)"
    ok = _stack_config()
    assert ok.returncode == 0, ok.stderr
    rendered = yaml.safe_load(ok.stdout)["services"]
    assert rendered["worker-train"]["deploy"]["restart_policy"]["condition"] == "any"
    missing = _stack_config(drop="REDIS_PASSWORD")
    assert missing.returncode != 0
    assert "set REDIS_PASSWORD in .env" in missing.stderr


def test_docker_compose_validates_the_file(tmp_path):
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose is missing: apt-get install docker-compose (.ci/run does)"
    ok = _compose_config(_filled_env(tmp_path))
    assert ok.returncode == 0, ok.stderr
    assert ok.stderr == ""  # no key compose ignores (it warns once per service, every command)
    missing = _compose_config(_filled_env(tmp_path, drop="RETRAIN_TOKEN"))
    assert missing.returncode != 0
    assert "set RETRAIN_TOKEN in .env" in missing.stderr


def test_the_fronts_limits_are_the_gateways():
    """The README promises the front refuses exactly what the gateway would: the same body cap
    (MAX_BODY_BYTES) and gunicorn's request-line and header-field limits."""
    template = FRONT_TEMPLATE.read_text()
    body_mib = int(re.search(r"client_max_body_size (\d+)m;", template).group(1))
    assert body_mib * 1024 * 1024 == Settings().max_body_bytes
    header_kib = int(re.search(r"large_client_header_buffers \d+ (\d+)k;", template).group(1))
    command = processes.gateway_command("x")
    line_limit = int(command[command.index("--limit-request-line") + 1])
    assert line_limit <= header_kib * 1024 <= 8190 + 2  # 8190 is gunicorn's field maximum
