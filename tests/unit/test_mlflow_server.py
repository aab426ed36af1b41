"""The MLflow server's login settings (services.stack.mlflow_server): written privately, from
the stack's variables; the server is tested behind its login in the integration tests."""

import os
import stat
from pathlib import Path

import pytest

from services.stack import mlflow_server

STACK = {
    "MLFLOW_BACKEND_STORE_URI": "postgresql+psycopg2://mlflow:db-secret@postgres:5432/mlflow",
    "MLFLOW_TRACKING_USERNAME": "price-category",
    "MLFLOW_TRACKING_PASSWORD": "stack-password",
}


@pytest.fixture(autouse=True)
def private_tmp(tmp_path, monkeypatch):
    monkeypatch.setattr(mlflow_server.tempfile, "gettempdir", lambda: str(tmp_path))
    return tmp_path


def test_the_admin_is_the_stack_s_account_and_users_live_in_the_runs_database():
    env = mlflow_server.server_environment(dict(STACK))
    assert env["MLFLOW_AUTH_ADMIN_USERNAME"] == "price-category"
    assert env["MLFLOW_AUTH_ADMIN_PASSWORD"] == "stack-password"
    assert env["MLFLOW_FLASK_SERVER_SECRET_KEY"] not in ("", "stack-password")
    config = Path(env["MLFLOW_AUTH_CONFIG_PATH"]).read_text()
    assert f"database_uri = {STACK['MLFLOW_BACKEND_STORE_URI']}\n" in config
    assert "auth_cache_ttl_seconds = 300\n" in config
    mode = os.stat(env["MLFLOW_AUTH_CONFIG_PATH"]).st_mode
    assert stat.S_IMODE(mode) == 0o600  # it holds the database's password


@pytest.mark.parametrize("missing", sorted(STACK))
def test_a_missing_variable_is_named(missing):
    with pytest.raises(SystemExit, match=missing):
        mlflow_server.server_environment({k: v for k, v in STACK.items() if k != missing})


def test_a_folder_another_user_could_read_is_refused(private_tmp):
    folder = private_tmp / f"mlflow-auth-{os.getuid()}"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    with pytest.raises(SystemExit, match="not this user's private folder"):
        mlflow_server.server_environment(dict(STACK))
