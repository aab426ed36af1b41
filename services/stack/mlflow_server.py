"""The MLflow server behind a login, wherever it runs (`make run`, the tests, compose, a swarm,
Kubernetes): `python -m services.stack.mlflow_server <mlflow server options>`.

MLflow's own basic-auth app answers 401 to anything but /health without a user's password.
Its users live in the runs' database (tables of their own, beside the runs'), and its admin is
the stack's account: MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, the same
variables every MLflow client of the stack reads. The auth app reads its database from a file
only, so the file is written here, privately, from MLFLOW_BACKEND_STORE_URI.
"""

import hashlib
import os
import sys
import tempfile
from pathlib import Path
from typing import NoReturn

REQUIRED = ("MLFLOW_BACKEND_STORE_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")


# How long the server trusts a checked password. Checking one is a PBKDF2 hash: with none
# kept, every request paid it (420-450 ms a request here, against 20 ms with it kept), and
# the stack's few processes polling MLflow kept its one worker at 55-65% of a core. The
# server runs one worker, so a password changed through its API is forgotten at once; one
# changed in the database by hand is honoured within this time.
AUTH_CACHE_SECONDS = 300


def auth_config(database_uri: str) -> str:
    """MLflow's basic-auth settings: one database for runs and users; a user reads everything
    by default (the stack has only its own account)."""
    return (
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = {database_uri}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        f"auth_cache_ttl_seconds = {AUTH_CACHE_SECONDS}\n"
    )


def write_auth_config(database_uri: str) -> Path:
    """The settings in a file only this user reads (the URI may hold the database's password),
    one per database, rewritten at each start."""
    name = hashlib.sha256(database_uri.encode()).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / f"mlflow-auth-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    # The temporary folder is everyone's: one another user made in its place (to read the
    # password) is refused, not used.
    found = folder.lstat()
    if not folder.is_dir() or found.st_uid != os.getuid() or found.st_mode & 0o077:
        raise SystemExit(f"mlflow_server: {folder} is not this user's private folder: remove it")
    path = folder / f"{name}.ini"
    path.touch(mode=0o600)
    path.write_text(auth_config(database_uri))
    return path


def server_environment(environ: dict[str, str]) -> dict[str, str]:
    """What the auth app needs, from the stack's variables: its settings file, its admin (the
    stack's account, created at the first start) and the static key of its forms' CSRF tokens
    (derived from the password: one secret fewer to keep)."""
    missing = [name for name in REQUIRED if not environ.get(name)]
    if missing:
        raise SystemExit(f"mlflow_server: set {', '.join(missing)}")
    password = environ["MLFLOW_TRACKING_PASSWORD"]
    return {
        "MLFLOW_AUTH_CONFIG_PATH": str(write_auth_config(environ["MLFLOW_BACKEND_STORE_URI"])),
        "MLFLOW_AUTH_ADMIN_USERNAME": environ["MLFLOW_TRACKING_USERNAME"],
        "MLFLOW_AUTH_ADMIN_PASSWORD": password,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": hashlib.sha256(
            f"mlflow-forms:{password}".encode()
        ).hexdigest(),
    }


def main(arguments: list[str]) -> NoReturn:
    environ = {**os.environ, **server_environment(dict(os.environ))}
    mlflow = str(Path(sys.executable).with_name("mlflow"))
    os.execve(mlflow, [mlflow, "server", "--app-name", "basic-auth", *arguments], environ)


if __name__ == "__main__":
    main(sys.argv[1:])
