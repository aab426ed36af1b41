"""Real server processes on free loopback ports, for integration tests: start, wait, stop."""

import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
POSTGRES_USER = "postgres"  # PostgreSQL refuses to run as root: run it as this user


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str,
               process: subprocess.Popen | None = None) -> None:
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


def stop(process: subprocess.Popen, timeout: float = 15) -> None:
    """Stop a process we started, by its PID: TERM, then KILL if it lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)


def start_logged(command: list[str], log_path: Path, env: dict[str, str] | None = None,
                 user: str | None = None) -> subprocess.Popen:
    """Start a command with its output in a log file."""
    kwargs = {}
    if user is not None and os.geteuid() == 0:
        record = pwd.getpwnam(user)
        kwargs = {"user": record.pw_uid, "group": record.pw_gid, "extra_groups": []}
    with log_path.open("ab") as log_file:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})}, **kwargs)


def tcp_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start_redis(folder: Path) -> tuple[subprocess.Popen, int]:
    """redis-server with an append-only file, so a restart on the same folder keeps the jobs."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    process = start_logged(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
         "--appendonly", "yes", "--save", ""],
        folder / "redis.log",
    )
    wait_until(lambda: tcp_open(port), 20, "redis-server", process)
    return process, port


def _as_postgres_user() -> str | None:
    return POSTGRES_USER if os.geteuid() == 0 else None


def start_postgres(folder: Path) -> tuple[subprocess.Popen, int]:
    """A throwaway PostgreSQL cluster with an `mlflow` database, trust auth on loopback."""
    folder.mkdir(parents=True, exist_ok=True)
    user = _as_postgres_user()
    if user is not None:
        record = pwd.getpwnam(user)
        for path in (folder, *folder.parents):
            if path == Path("/") or path.stat().st_uid == record.pw_uid:
                break
            os.chmod(path, path.stat().st_mode | 0o011)  # let the server user traverse
        shutil.chown(folder, record.pw_uid, record.pw_gid)
    data = folder / "data"
    init = start_logged(["initdb", "-D", str(data), "-A", "trust", "-U", "postgres",
                         "--no-sync"], folder / "initdb.log", user=user)
    if init.wait(120) != 0:
        raise RuntimeError(f"initdb failed: {(folder / 'initdb.log').read_text()[-2000:]}")
    port = free_port()
    process = start_logged(
        ["postgres", "-D", str(data), "-p", str(port), "-k", str(folder),
         "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
        folder / "postgres.log", user=user,
    )
    wait_until(lambda: tcp_open(port), 30, "postgres", process)
    created = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                              "-c", "CREATE DATABASE mlflow"], capture_output=True, text=True)
    if created.returncode != 0:
        raise RuntimeError(f"could not create the mlflow database: {created.stderr}")
    return process, port


def start_mlflow(folder: Path, backend_uri: str) -> tuple[subprocess.Popen, int]:
    """An MLflow tracking server on the given backend store, serving its own artifacts."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    process = start_logged(
        [str(VENV_BIN / "mlflow"), "server", "--backend-store-uri", backend_uri,
         "--artifacts-destination", str(folder / "artifacts"), "--serve-artifacts",
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        folder / "mlflow.log",
    )

    def healthy() -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as reply:
            return reply.status == 200

    wait_until(healthy, 180, "mlflow server", process)
    return process, port


def start_worker(queue: str, folder: Path, env: dict[str, str], name: str) -> subprocess.Popen:
    """An `rq worker` on one stage queue, with the JSON serializer and the retry scheduler."""
    return start_logged(
        [str(VENV_BIN / "rq"), "worker", "--url", env["REDIS_URL"], "--serializer",
         "rq.serializers.JSONSerializer", "--with-scheduler", "--name", name, queue],
        folder / f"{name}.log", env=env,
    )
