"""PostgreSQL for integration tests: a throwaway cluster run as an unprivileged user."""

import os
import pwd
import shutil
import subprocess
from pathlib import Path

from services.stack.processes import free_port, start_logged, tcp_open, wait_until

POSTGRES_USER = "postgres"  # PostgreSQL refuses to run as root: run it as this user


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
    init = start_logged(
        ["initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"],
        folder / "initdb.log",
        user=user,
    )
    if init.wait(120) != 0:
        raise RuntimeError(f"initdb failed: {(folder / 'initdb.log').read_text()[-2000:]}")
    port = free_port()
    process = run_postgres(folder, port)
    created = subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "postgres",
            "-c",
            "CREATE DATABASE mlflow",
        ],
        capture_output=True,
        text=True,
    )
    if created.returncode != 0:
        raise RuntimeError(f"could not create the mlflow database: {created.stderr}")
    return process, port


def run_postgres(folder: Path, port: int) -> subprocess.Popen:
    """The server on an initialised cluster in folder; also how a test restarts it."""
    process = start_logged(
        ["postgres", "-D", str(folder / "data"), "-p", str(port), "-k", str(folder),
         "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
        folder / "postgres.log",
        user=_as_postgres_user(),
    )  # fmt: skip
    wait_until(lambda: tcp_open(port), 30, "postgres", process)
    return process


def stop_postgres_immediately(folder: Path, process: subprocess.Popen) -> None:
    """`pg_ctl stop -m immediate`: no clean shutdown, as if the machine lost power."""
    stop = start_logged(
        ["pg_ctl", "-D", str(folder / "data"), "stop", "-m", "immediate"],
        folder / "pg_ctl.log",
        user=_as_postgres_user(),
    )
    if stop.wait(30) != 0:
        raise RuntimeError(f"pg_ctl stop failed: {(folder / 'pg_ctl.log').read_text()[-2000:]}")
    process.wait(30)
