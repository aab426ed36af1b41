"""Experimentation mode: `dvc repro` runs the same stage functions in-process, no Redis."""

import os
import shutil
import subprocess

import pytest
from mlflow.tracking import MlflowClient

from services.stack.processes import VENV_BIN
from shared.settings import PROJECT_DIR
from shared.storage import file_md5, read_json
from tests.integration.conftest import FAST_GRID, Stack, write_pipeline_config

pytestmark = pytest.mark.integration

COPIED = ("dvc.yaml", "shared", "services", "data/raw/listings.csv.gz")


def test_dvc_repro_runs_every_stage_and_pins_the_data(stack: Stack, tmp_path):
    project = tmp_path / "project"
    for name in COPIED:
        source, target = PROJECT_DIR / name, project / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, target)
    write_pipeline_config(project / "config" / "pipeline.yaml", FAST_GRID, project / "processed")
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}:{os.environ['PATH']}",
        "MLFLOW_TRACKING_URI": stack.settings.mlflow_tracking_uri,
        "PIPELINE_CONFIG": str(project / "config" / "pipeline.yaml"),
        "PROJECT_DIR": str(project),
        "REDIS_URL": "redis://127.0.0.1:1/0",  # nothing listens there: Redis must not be needed
    }
    for command in (["git", "init", "-q"], ["dvc", "init", "-q"]):
        subprocess.run(command, cwd=project, env=env, check=True)

    result = subprocess.run(
        ["dvc", "repro"], cwd=project, env=env, capture_output=True, text=True, timeout=600
    )

    assert result.returncode == 0, result.stdout + result.stderr
    lock = (project / "dvc.lock").read_text()
    assert file_md5(project / "data/raw/listings.csv.gz") in lock
    prep, select = (
        read_json(project / "reports/prep.json"),
        read_json(project / "reports/select.json"),
    )
    assert prep["data_hash"] == file_md5(project / "data/raw/listings.csv.gz")
    assert set(read_json(project / "reports/train.json")["candidates"]) == {
        c["name"] for c in FAST_GRID
    }
    client = MlflowClient(stack.settings.mlflow_tracking_uri)
    assert client.get_run(prep["parent_run_id"]).info.status == "FINISHED"
    version = client.get_model_version(stack.settings.model_name, select["version"])
    assert version.tags["pipeline_run_id"] == prep["run_id"]
    assert read_json(project / "reports/explain.json")["explained_rows"] == 100
    # Every candidate's model is logged to its run, and nothing staged is left behind.
    archived = read_json(project / "reports/archive.json")["models"]
    assert set(archived) == {c["name"] for c in FAST_GRID}
    assert archived[select["winner"]] == select["model_uri"]
    assert not (project / "data/staged" / prep["run_id"]).exists()
