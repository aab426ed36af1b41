"""The system's processes: the exact commands that run Redis, MLflow and the stage workers.

The local runner and the integration tests start these same commands (and docker-compose
runs them too), so what is tested is what runs.
"""

import contextlib
import http.client
import logging
import os
import pwd
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

from shared.probes import mlflow_answers
from shared.settings import MLFLOW_USERNAME

VENV_BIN = Path(sys.executable).parent
log = logging.getLogger(__name__)
WORKER_TTL = 30  # seconds
# Redis' memory bound: the prediction log's and the feedback's caps (~130 MB together) and the
# queues and runs, with room under the deployments' 512 MiB limit for an append-only file
# rewrite's copy-on-write.
REDIS_MAX_MEMORY = "320mb"


def redis_command(port: int, folder: Path | str, host: str = "127.0.0.1") -> list[str]:
    """redis-server with an append-only file, so a restart on the same folder keeps the jobs.

    Its password comes on standard input (`-`: read the configuration from stdin, see
    redis_config), never on the command line, which every user of the host can read in `ps`.
    """
    command = ["redis-server", "-", "--port", str(port), "--bind", host, "--dir", str(folder)]
    # Every write reaches the disk before Redis answers: a queued job survives kill -9.
    command += ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
    # Bounded, and never by evicting: a queued job, a run or a lock must not vanish to make
    # room. Past the bound writes fail (the prediction log drops and counts), Redis lives on.
    return command + ["--maxmemory", REDIS_MAX_MEMORY, "--maxmemory-policy", "noeviction"]


def redis_config(password: str) -> str:
    """What redis_command reads on standard input."""
    return f"requirepass {password}\n"


def redis_url(port: int, password: str, host: str = "127.0.0.1") -> str:
    return f"redis://:{password}@{host}:{port}/0"


# The MLflow server's settings besides its store. MLflow 3 starts server-side job runners by
# default (eight Huey consumers, for GenAI scorers and trace archival, none of which this
# project uses) that poll their queue without pause: about one core of two, measured, which
# made every fit in a worker 2-3x slower and a prediction's p99 longer.
MLFLOW_SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def mlflow_command(port: int, artifacts: str, host: str = "127.0.0.1") -> list[str]:
    """An MLflow tracking server behind its login (services.stack.mlflow_server), serving
    (proxying) its own artifacts. Its backend store and its account come from the environment
    (MLFLOW_BACKEND_STORE_URI, MLFLOW_TRACKING_USERNAME and _PASSWORD): they hold passwords.
    It answers only requests naming loopback as their Host (MLflow's check against DNS
    rebinding; compose adds the service's own name)."""
    command = [str(VENV_BIN / "python"), "-m", "services.stack.mlflow_server"]
    command += ["--artifacts-destination", artifacts, "--serve-artifacts"]
    command += ["--allowed-hosts", "localhost:*,127.0.0.1:*"]
    return command + ["--host", host, "--port", str(port), "--workers", "1"]


def use_mlflow_login(password: str | None = None) -> None:
    """Give this process, and every process it starts from now on, the stack's MLflow account:
    the password given, else the one already set, else a new one (a stack of this process's
    own, as the tests and the bench start)."""
    os.environ["MLFLOW_TRACKING_USERNAME"] = MLFLOW_USERNAME
    if password is not None or not os.environ.get("MLFLOW_TRACKING_PASSWORD"):
        os.environ["MLFLOW_TRACKING_PASSWORD"] = password or secrets.token_urlsafe(18)


def worker_command(queue: str, name: str | None = None) -> list[str]:
    """An `rq worker` on one stage queue, with the JSON serializer and the retry scheduler.

    Redis comes from RQ_REDIS_URL in the environment, so no password shows in `ps`.
    """
    command = [str(VENV_BIN / "rq"), "worker", "--serializer", "rq.serializers.JSONSerializer"]
    # The stage modules load once in the worker, not in every job's forked work-horse.
    command += ["--worker-class", "services.workers.preloaded.PreloadedWorker"]
    # Only the pipeline's own stage functions run, whatever a job in Redis names.
    command += ["--job-class", "shared.queues.PipelineJob"]
    command += ["--with-scheduler"] + (["--name", name] if name else [])
    # A dead worker's job is found and retried within two minutes, not RQ's default ten: its
    # heartbeat lapses 60 s after the last beat (every 10 s), and the sweep runs every 30 s.
    command += [
        "--worker-ttl",
        str(WORKER_TTL),
        "--maintenance-interval",
        str(WORKER_TTL),
        "--job-monitoring-interval",
        "10",
    ]
    return command + [queue]


def gateway_command(*binds: str, workers: int | None = None) -> list[str]:
    """The gateway under gunicorn, listening at each bind (host:port, or unix:path): one process
    per core (prediction is CPU-bound, and threads would serialise on the GIL), each
    single-threaded, each following promotions itself."""
    # The master imports the gateway's libraries once, before forking (see its docstring).
    command = [str(VENV_BIN / "gunicorn"), "--config", "python:services.gateway.gunicorn_conf"]
    for bind in binds:
        command += ["--bind", bind]
    command += ["--workers", str(workers or os.cpu_count() or 1), "--threads", "1"]
    command += ["--timeout", "120", "--graceful-timeout", "20", "--no-control-socket"]
    # gunicorn answers an over-long request line itself, in HTML; at its maximum (8190) the
    # app sees any plausible URL and answers JSON (schemathesis found a 4 KB one).
    command += ["--limit-request-line", "8190"]
    return command + ["services.gateway.wsgi:app"]


def dashboard_command(port: int, host: str = "127.0.0.1") -> list[str]:
    """rq-dashboard on its own (the gateway also serves it under /rq). Redis and the basic-auth
    credentials come from RQ_DASHBOARD_REDIS_URL, _USERNAME and _PASSWORD."""
    return [str(VENV_BIN / "rq-dashboard"), "--bind", host, "--port", str(port), "--json"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tcp_open(port: int) -> bool:
    """Whether something listens on a loopback port."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_until(
    check: Callable[[], bool], timeout: float, what: str, process: subprocess.Popen | None = None
) -> None:
    """Poll until check() holds; fail naming what never came up (and why, if it died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s")


def wait_for_start(
    check: Callable[[], bool], timeout: float, what: str, process: subprocess.Popen
) -> None:
    """wait_until for a process just started; one that never comes up is stopped, not left."""
    try:
        wait_until(check, timeout, what, process)
    except TimeoutError:
        stop(process)
        raise


def children(pid: int) -> list[int]:
    """The process's direct children (a worker's work-horse and scheduler, gunicorn's workers);
    none once it has ended."""
    try:
        return [
            int(child)
            for task in Path(f"/proc/{pid}/task").iterdir()
            for child in (task / "children").read_text().split()
        ]
    except FileNotFoundError:
        return []


def stop(process: subprocess.Popen, timeout: float = 15) -> None:
    """Stop a process we started, by its PID: TERM, then KILL if it lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)


def start_logged(
    command: list[str],
    log_path: Path,
    env: dict[str, str] | None = None,
    user: str | None = None,
    stdin_text: str | None = None,
) -> subprocess.Popen:
    """Start a command with its output appended to a log file (as `user` when we are root),
    writing stdin_text, if any, to its standard input (secrets kept off its command line).

    In a session (and process group) of its own: what it forks (gunicorn's workers, MLflow's
    job runners, RQ's work-horses) can be found and stopped as a group after it died."""
    identity: dict[str, Any] = {}
    if user is not None and os.geteuid() == 0:
        record = pwd.getpwnam(user)
        identity = {"user": record.pw_uid, "group": record.pw_gid, "extra_groups": []}
    with log_path.open("ab") as log_file:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL if stdin_text is None else subprocess.PIPE,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
            **identity,
        )
    if process.stdin is not None:
        with process.stdin:
            process.stdin.write((stdin_text or "").encode())
    return process


def start_redis(
    folder: Path, password: str, port: int | None = None
) -> tuple[subprocess.Popen, int]:
    """Start redis-server, requiring password, on a loopback port (a free one unless given)
    and wait until it accepts commands."""
    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    command = redis_command(port, folder)
    process = start_logged(command, folder / "redis.log", stdin_text=redis_config(password))
    wait_for_start(lambda: redis_answers(port, password), 60, "redis-server", process)
    return process, port


def redis_answers(port: int, password: str) -> bool:
    """Redis answers PING: it listens and has loaded its append-only file. Until then it
    accepts connections but refuses every command (LOADING), for seconds when the file holds
    a long prediction log."""
    client = Redis(
        host="127.0.0.1", port=port, password=password, socket_timeout=2, socket_connect_timeout=2
    )
    try:
        return bool(client.ping())
    except RedisError:
        return False
    finally:
        client.close()


def start_mlflow(
    folder: Path, backend_uri: str, port: int | None = None, wait: bool = True
) -> tuple[subprocess.Popen, int]:
    """Start an MLflow server with its artifacts under folder, and (unless not to wait) wait
    until it is healthy."""
    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    if not os.environ.get("MLFLOW_TRACKING_PASSWORD"):
        use_mlflow_login()
    command = mlflow_command(port, str(folder / "artifacts"))
    env = {"MLFLOW_BACKEND_STORE_URI": backend_uri, **MLFLOW_SERVER_ENV}
    process = start_logged(command, folder / "mlflow.log", env)
    if wait:
        wait_for_mlflow(process, port)
    return process, port


def wait_for_mlflow(process: subprocess.Popen, port: int) -> None:
    """Until the MLflow server just started on port is healthy; stopped if it never is."""
    uri = f"http://127.0.0.1:{port}"
    wait_for_start(lambda: mlflow_answers(uri), 180, "mlflow server", process)


class _UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a unix socket."""

    def __init__(self, socket_path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = socket_path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(str(self.socket_path))


def _gateway_lives(bind: str) -> bool:
    """Whether the gateway at bind (host:port or unix:path) answers /health/live."""
    if bind.startswith("unix:"):
        connection: http.client.HTTPConnection = _UnixHTTPConnection(
            Path(bind.removeprefix("unix:")), timeout=2
        )
    else:
        host, port = bind.rsplit(":", 1)
        connection = http.client.HTTPConnection(host, int(port), timeout=2)
    try:
        connection.request("GET", "/health/live")
        return connection.getresponse().status == 200
    finally:
        connection.close()


def _start_gateway_at(
    binds: list[str], folder: Path, env: dict[str, str], workers: int | None
) -> subprocess.Popen:
    folder.mkdir(parents=True, exist_ok=True)
    command = gateway_command(*binds, workers=workers)
    process = start_logged(command, folder / "gateway.log", env)
    wait_for_start(lambda: all(map(_gateway_lives, binds)), 60, "gateway", process)
    return process


def start_gateway(
    folder: Path,
    env: dict[str, str],
    port: int | None = None,
    workers: int | None = None,
    also_socket: Path | None = None,
) -> tuple[subprocess.Popen, int]:
    """Start the gateway on a loopback port (a free one unless given) with its settings in the
    environment, and on a unix socket too if given; wait until it answers."""
    port = port or free_port()
    binds = [f"127.0.0.1:{port}"] + ([f"unix:{also_socket}"] if also_socket else [])
    return _start_gateway_at(binds, folder, env, workers), port


def start_private_gateway(
    socket_path: Path, folder: Path, env: dict[str, str], workers: int | None = None
) -> subprocess.Popen:
    """Start the gateway on a unix socket (only users who may enter its folder can connect:
    nobody else can reach gunicorn around its front); wait until it answers."""
    return _start_gateway_at([f"unix:{socket_path}"], folder, env, workers)


def start_worker(
    queue: str, folder: Path, env: dict[str, str], name: str, rq_name: str | None = None
) -> subprocess.Popen:
    """Start one stage worker with its settings in the environment, logging to folder/name.log;
    rq_name, when given, is the name RQ registers (it must be unique among live workers)."""
    folder.mkdir(parents=True, exist_ok=True)
    env = {**env, "RQ_REDIS_URL": env["REDIS_URL"]}
    return start_logged(worker_command(queue, rq_name or name), folder / f"{name}.log", env)


class ChildGaveUpError(Exception):
    """A supervised process kept exiting right after each start: restarting it cannot help."""


class Supervised:
    """A process started again whenever it exits unasked, as compose's `restart:` policy does:
    after 0.1 s (as Docker's), then twice as long each time it dies again within STABLE_SECONDS
    of starting (at most 30 s). A process that never stayed up that long is given up after
    MAX_QUICK_FAILURES such deaths in a row, saying why: it cannot start at all (a broken
    install, a port taken). One that did is never given up: a worker dies at once while Redis
    is away, for as long as it is away, and giving up on it stopped the whole stack, the
    gateway that serves from memory included."""

    STABLE_SECONDS = 30.0
    MAX_QUICK_FAILURES = 5
    FIRST_DELAY, MAX_DELAY = 0.1, 30.0

    def __init__(
        self,
        name: str,
        start: Callable[[], subprocess.Popen],
        log_path: Path,
        kill_leftovers: bool = True,
    ) -> None:
        # kill_leftovers: once it died, its process group goes too before it starts again
        # (gunicorn's orphaned workers would hold its port; MLflow's job runners its store).
        self.name, self._start, self.log_path = name, start, log_path
        self.kill_leftovers = kill_leftovers
        self.quick_failures = 0
        self.ever_stable = False  # stayed up STABLE_SECONDS at least once
        self.wanted = True
        self.restart_at: float | None = None
        self.started_at = time.monotonic()
        self.process = start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def poll(self) -> int | None:
        return self.process.poll()

    def ensure_running(self) -> bool:
        """Schedule a restart of an exited process, or start it once its backoff is over; True
        when it started it again. Raises ChildGaveUpError when it keeps dying."""
        if not self.wanted or (self.restart_at is None and self.process.poll() is None):
            return False
        now = time.monotonic()
        if self.restart_at is None:
            self._schedule_restart(now, f"exited with code {self.process.returncode}")
            self._stop_leftovers()
            return False
        if now < self.restart_at:
            return False
        self.restart_at = None
        self.started_at = now
        try:
            self.process = self._start()
        except (RuntimeError, TimeoutError, OSError) as error:  # died or hung while starting
            self._schedule_restart(time.monotonic(), f"did not start again ({error})", True)
            return False
        return True

    def _schedule_restart(self, now: float, why: str, failed_start: bool = False) -> None:
        up_for = now - self.started_at
        stayed_up = up_for >= self.STABLE_SECONDS and not failed_start
        self.ever_stable = self.ever_stable or stayed_up
        self.quick_failures = 1 if stayed_up else self.quick_failures + 1
        if self.quick_failures > self.MAX_QUICK_FAILURES and not self.ever_stable:
            raise ChildGaveUpError(
                f"{self.name} {why}, its {self.quick_failures}th failure in a row within "
                f"{self.STABLE_SECONDS:.0f} s of starting: giving up (see {self.log_path})"
            )
        delay = min(self.FIRST_DELAY * 2.0 ** (self.quick_failures - 1), self.MAX_DELAY)
        log.warning(
            "%s %s after %.0f s up: starting it again in %.1f s", self.name, why, up_for, delay
        )
        self.restart_at = now + delay

    def _stop_leftovers(self) -> None:
        if self.kill_leftovers:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)

    def stop(self) -> None:
        self.wanted = False
        stop(self.process)
        self._stop_leftovers()


class SupervisedWorker(Supervised):
    """A stage worker under supervision. RQ workers exit on purpose when Redis stops answering
    for a while; the supervisor is what brings them back once it answers again."""

    def __init__(self, queue: str, folder: Path, env: dict[str, str], name: str) -> None:
        def start() -> subprocess.Popen:
            # A fresh RQ name each time: a killed worker's registration outlives it for a while.
            rq_name = f"{name}-{secrets.token_hex(3)}"
            return start_worker(queue, folder, env, name, rq_name)

        # A killed worker's work-horse finishes its job on its own: left alone, not killed.
        super().__init__(name, start, folder / f"{name}.log", kill_leftovers=False)


def start_dashboard(folder: Path, env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    """Start the standalone rq-dashboard; env holds its RQ_DASHBOARD_* settings."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    process = start_logged(dashboard_command(port), folder / "rq-dashboard.log", env)
    wait_for_start(lambda: tcp_open(port), 30, "rq-dashboard", process)
    return process, port
