"""`make run`: the whole system as local processes, with no Docker.

Starts Redis (append-only), an MLflow server (SQLite under .state/ unless
MLFLOW_BACKEND_STORE_URI names another store, e.g. PostgreSQL), one worker per stage queue
and the gateway (gunicorn behind its buffering front, nginx, on GATEWAY_PORT); trains a first
model when none is registered; prints where everything is; keeps every process running (one
that exits is started again, with backoff, as compose's restart policy does; the runner gives
up only on one that keeps dying at once); stops every process it started on Ctrl-C, and
nothing else.
"""

import faulthandler
import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import NoReturn

from services.client.api import GatewayClient
from services.stack import processes
from services.stack.front import start_front
from shared.contracts import CHALLENGE_EXAMPLE
from shared.probes import answers_ok
from shared.queues import WORKER_QUEUES
from shared.settings import MLFLOW_USERNAME, Settings, get_local_settings
from shared.storage import read_json, write_json_atomic

log = logging.getLogger("stack")

# Each port and the setting (shared.settings.LocalSettings) that changes it.
PORTS = {"Redis": "redis_port", "MLflow": "mlflow_port", "gateway": "gateway_port"}
MLFLOW = "mlflow server"  # its supervised child's name
# Secrets of the gateway, Redis and MLflow; generated once into the state folder when not set.
GENERATED_SECRETS = (
    "RETRAIN_TOKEN",
    "DASHBOARD_PASSWORD",
    "REDIS_PASSWORD",
    "MLFLOW_TRACKING_PASSWORD",
)


class StackError(Exception):
    """The stack cannot start; the message says what to do."""


def port_of(name: str) -> int:
    return int(getattr(get_local_settings(), PORTS[name]))


# Programs the stack runs that pip does not install, each with its Debian package.
SYSTEM_PROGRAMS = {"redis-server": "redis-server", "nginx": "nginx"}


def missing_programs() -> list[str]:
    """The Debian packages of the system programs not installed (nginx lives in /usr/sbin)."""
    search = f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin"
    return [
        package
        for program, package in SYSTEM_PROGRAMS.items()
        if shutil.which(program, path=search) is None
    ]


def ensure_system_programs() -> None:
    """Find Redis and nginx; as root with apt, install Debian's packages; else say what to do."""
    missing = missing_programs()
    if not missing:
        return
    install = f"sudo apt-get install {' '.join(missing)}"
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise StackError(f"not installed: {', '.join(missing)}; run `{install}`")
    log.info("installing Debian's %s", ", ".join(missing))
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *missing]):
        if subprocess.run(command, env=env).returncode != 0:
            raise StackError(f"installing {', '.join(missing)} failed: run `{install}`")


def check_prerequisites() -> None:
    """Fail early, naming the missing program or the busy port and the setting to change."""
    ensure_system_programs()
    for name, setting in PORTS.items():
        if processes.tcp_open(port_of(name)):
            raise StackError(f"port {port_of(name)} for {name} is in use: set {setting.upper()}")


def start_serving(state: Path, children: list[processes.Supervised]) -> dict[str, str]:
    """Start Redis, MLflow and the gateway behind its front, each supervised (started again on
    the same port when it exits), into children as each starts (so that a failed start stops
    those before it); returns the settings the gateway got. MLflow is not waited for: the
    gateway starts beside it and serves the champion as soon as MLflow answers."""
    redis_port, mlflow_port = port_of("Redis"), port_of("MLflow")
    backend = get_local_settings().mlflow_backend_store_uri or f"sqlite:///{state / 'mlflow.db'}"
    credentials = local_secrets(state)
    redis_password = credentials.pop("REDIS_PASSWORD")
    # MLflow's login: the server's admin, and the account of every process started from here
    # on (this one too: it looks for the champion).
    processes.use_mlflow_login(credentials.pop("MLFLOW_TRACKING_PASSWORD"))
    # The password reaches Redis on its standard input and the others in their environment,
    # both private to this user (a command line is not: `ps` shows it to everyone).
    env = {
        "REDIS_URL": processes.redis_url(redis_port, redis_password),
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{mlflow_port}",
    }
    children.append(
        processes.Supervised(
            "redis-server",
            lambda: processes.start_redis(state / "redis", redis_password, redis_port)[0],
            state / "redis" / "redis.log",
        )
    )
    log.info("starting MLflow on %s (first start migrates the store)", backend.split("@")[-1])
    children.append(
        processes.Supervised(
            MLFLOW,
            lambda: processes.start_mlflow(state / "mlflow", backend, mlflow_port, wait=False)[0],
            state / "mlflow" / "mlflow.log",
        )
    )
    # gunicorn on a unix socket in the state folder (mode 700): clients reach it only
    # through the front, and no other user of the host reaches it at all.
    app_socket, logs = gateway_socket(state), state / "logs"
    # A gateway started again serves the champion it had from here before MLflow answers.
    copy = {COPY_SETTING: os.environ.get(COPY_SETTING, str(state / "champion-copy"))}
    children.append(
        processes.Supervised(
            "gateway (gunicorn)",
            lambda: processes.start_private_gateway(app_socket, logs, env | credentials | copy),
            logs / "gateway.log",
        )
    )
    children.append(
        processes.Supervised(
            "front (nginx)",
            lambda: start_front(state / "front", f"unix:{app_socket}", port_of("gateway"))[0],
            state / "front" / "front.log",
        )
    )
    return env | credentials


def serve_champion(state: Path, children: list[processes.Supervised], env: dict[str, str]) -> None:
    """Once MLflow answers: with a champion registered, wait until the gateway serves it, then
    start the workers (serving first: their start would slow the gateway's); with none, start
    them and train a first one."""
    # Imported here, once the servers are starting: MLflow's client library takes about 2 s
    # of CPU to import, which would otherwise delay every server's start.
    from services.stack.bootstrap import BootstrapError, ensure_champion
    from shared.registry import Registry

    mlflow = next(child for child in children if child.name == MLFLOW)
    processes.wait_for_mlflow(mlflow.process, port_of("MLflow"))
    settings = Settings(redis_url=env["REDIS_URL"], mlflow_tracking_uri=env["MLFLOW_TRACKING_URI"])
    registry = Registry(settings)
    if registry.champion() is not None:
        wait_until_served()
    start_workers(state, children, env)
    gateway = GatewayClient(f"http://127.0.0.1:{port_of('gateway')}", env["RETRAIN_TOKEN"])
    try:
        ensure_champion(registry, gateway)
    except BootstrapError as error:
        raise StackError(str(error)) from None
    wait_until_served()


def start_workers(state: Path, children: list[processes.Supervised], env: dict[str, str]) -> None:
    """One supervised worker per queue (the stages' and the monitor's); they get Redis and
    MLflow, not the gateway's credentials."""
    worker_env = {name: env[name] for name in ("REDIS_URL", "MLFLOW_TRACKING_URI")}
    for queue in WORKER_QUEUES:
        children.append(
            processes.SupervisedWorker(queue, state / "logs", worker_env, f"worker-{queue}")
        )


def gateway_socket(state: Path) -> Path:
    """The gunicorn socket's path; a unix socket's path holds at most 107 bytes."""
    path = state.resolve() / "gateway.sock"
    if len(str(path).encode()) > 100:
        raise StackError(
            f"the state folder's path is too long for a socket ({path}): set STATE_DIR"
        )
    return path


COPY_SETTING = "PRICE_CATEGORY_CHAMPION_COPY_DIR"
# How often the runner looks for a child that exited: part of how long a killed gateway's
# predictions fail (a look costs a waitpid per child).
CHECK_SECONDS = 0.2
# A child's stop taking longer is said in the log, so a slow Ctrl-C names what it waited for.
SLOW_STOP_SECONDS = 2.0


def supervise(children: list[processes.Supervised]) -> NoReturn:
    """Keep every child running until Ctrl-C; raises StackError once one keeps dying."""
    while True:
        for child in children:
            try:
                if child.ensure_running():
                    log.info("%s is running again (pid %s)", child.name, child.pid)
            except processes.ChildGaveUpError as error:
                raise StackError(str(error)) from None
        time.sleep(CHECK_SECONDS)


def local_secrets(state: Path) -> dict[str, str]:
    """The gateway's credentials and Redis' and MLflow's passwords: from the environment, else
    generated once and kept in state."""
    stored_file = state / "secrets.json"
    stored = read_json(stored_file) if stored_file.is_file() else {}
    for name in GENERATED_SECRETS:
        stored.setdefault(name, secrets.token_urlsafe(18))
    write_json_atomic(stored, stored_file)
    stored_file.chmod(0o600)
    local = get_local_settings()
    values = {name: local.given(name) or stored[name] for name in GENERATED_SECRETS}
    return values | {"DASHBOARD_USER": local.dashboard_user}


def banner(env: dict[str, str], state: Path) -> str:
    """Where everything is and how to use it, once a champion is served."""
    gateway = f"http://127.0.0.1:{port_of('gateway')}"
    example = json.dumps(CHALLENGE_EXAMPLE)
    lines = [
        f"Gateway:       {gateway}   (API docs: {gateway}/docs)",
        f"MLflow UI:     {env['MLFLOW_TRACKING_URI']}   user {MLFLOW_USERNAME}"
        f" password MLFLOW_TRACKING_PASSWORD in {state / 'secrets.json'}",
        f"rq-dashboard:  {gateway}/rq/   user {env['DASHBOARD_USER']}"
        f" password {env['DASHBOARD_PASSWORD']}",
        f"Retrain token: {env['RETRAIN_TOKEN']}   (kept in {state / 'secrets.json'})",
        f"Logs:          {state / 'logs'}",
        "",
        "Predict the challenge's example:",
        f"  curl -s {gateway}/predict -H 'Content-Type: application/json' -d '{example}'",
        "Retrain:",
        f"  curl -s -X POST {gateway}/retrain -H 'Authorization: Bearer {env['RETRAIN_TOKEN']}'",
        "",
        "Ctrl-C stops everything this command started.",
    ]
    return "\n" + "\n".join(lines) + "\n"


def wait_until_served() -> None:
    """Wait until the gateway answers ready: a champion is loaded and its services reachable."""
    url = f"http://127.0.0.1:{port_of('gateway')}/health/ready"
    try:
        processes.wait_until(lambda: answers_ok(url), 120, "gateway serving the champion")
    except TimeoutError:
        raise StackError(
            "the gateway cannot serve the registered champion (see logs/gateway.log); "
            "if it was trained by older code, `make retrain` while the stack runs trains a new one"
        ) from None


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    state = get_local_settings().state_dir
    (state / "logs").mkdir(parents=True, exist_ok=True)
    state.chmod(0o700)  # secrets, logs and Redis' data: this user's alone
    children: list[processes.Supervised] = []
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # Ctrl-C (SIGINT) stops everything however this was started: a command started in the
    # background by a shell without job control inherits SIGINT ignored, and Python then
    # leaves it ignored (the supervision test's runner, under a backgrounded CI, did).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # `kill -USR1 <pid>` writes where every thread of this process is to its output: what a
    # stop that hangs is waiting for.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    try:
        check_prerequisites()
        env = start_serving(state, children)
        serve_champion(state, children, env)
        print(banner(env, state), flush=True)
        supervise(children)
    except StackError as error:
        log.error("%s", error)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for child in reversed(children):  # the gateway and workers first, Redis last
            stopping = time.monotonic()
            child.stop()
            took = time.monotonic() - stopping
            if took > SLOW_STOP_SECONDS:  # e.g. a worker finishing its job: say who waits
                log.info("stopping %s took %.1f s", child.name, took)
        log.info("every process this command started has stopped")


if __name__ == "__main__":
    sys.exit(main())
