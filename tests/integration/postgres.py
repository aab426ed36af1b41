"""PostgreSQL for integration tests: a throwaway cluster run as an unprivileged user."""

import hashlib
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from services.stack.processes import free_port, start_logged, tcp_open, wait_until

POSTGRES_USER = "postgres"  # PostgreSQL refuses to run as root: run it as this user


def _as_postgres_user() -> str | None:
    return POSTGRES_USER if os.geteuid() == 0 else None


def cluster_dir(folder: Path) -> Path:
    """Where the cluster of a test folder keeps its files (its logs stay in folder).

    As root, a folder of the server user's own under /tmp: not inside pytest's temporary tree,
    whose root every pytest session starting meanwhile (`make test-unit` in another terminal)
    makes private again, locking the server out of its own files."""
    if _as_postgres_user() is None:
        return folder
    digest = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"price-category-postgres-{digest}"


def remove_cluster(folder: Path) -> None:
    """Delete the files of a stopped cluster kept outside its test folder."""
    if cluster_dir(folder) != folder:
        shutil.rmtree(cluster_dir(folder), ignore_errors=True)


def start_postgres(folder: Path) -> tuple[subprocess.Popen, int]:
    """A throwaway PostgreSQL cluster with an `mlflow` database, trust auth on loopback."""
    folder.mkdir(parents=True, exist_ok=True)
    user = _as_postgres_user()
    cluster = cluster_dir(folder)
    if user is not None:
        shutil.rmtree(cluster, ignore_errors=True)  # left by a run that was killed
        cluster.mkdir(mode=0o700)
        record = pwd.getpwnam(user)
        shutil.chown(cluster, record.pw_uid, record.pw_gid)
    data = cluster / "data"
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
        ["postgres", "-D", str(cluster_dir(folder) / "data"), "-p", str(port),
         "-k", str(cluster_dir(folder)),
         "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
        folder / "postgres.log",
        user=_as_postgres_user(),
    )  # fmt: skip
    wait_until(lambda: tcp_open(port), 30, "postgres", process)
    return process


def stop_postgres_immediately(folder: Path, process: subprocess.Popen) -> None:
    """`pg_ctl stop -m immediate`: no clean shutdown, as if the machine lost power."""
    stop = start_logged(
        ["pg_ctl", "-D", str(cluster_dir(folder) / "data"), "stop", "-m", "immediate"],
        folder / "pg_ctl.log",
        user=_as_postgres_user(),
    )
    if stop.wait(30) != 0:
        raise RuntimeError(f"pg_ctl stop failed: {(folder / 'pg_ctl.log').read_text()[-2000:]}")
    process.wait(30)
