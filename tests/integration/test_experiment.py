"""Experimentation mode: `dvc repro` runs the same stage functions in-process, no Redis, and
never moves the production champion unless asked."""

import os
import shutil
import subprocess
import time

import pytest
import requests
from mlflow.tracking import MlflowClient

from services.stack.processes import VENV_BIN
from shared.pipeline import STAGES
from shared.registry import Registry
from shared.settings import PROJECT_DIR
from shared.staged_models import STAGED_FOLDER
from shared.storage import file_md5, read_json
from tests.integration.conftest import (
    FAST_GRID,
    GATEWAY_POLL_SECONDS,
    Stack,
    promotable_grid,
    write_pipeline_config,
)

pytestmark = pytest.mark.integration

COPIED = ("dvc.yaml", "shared", "services", "data/raw/listings.csv.gz")


def served_version(gateway: str) -> str:
    return requests.get(f"{gateway}/health/ready", timeout=10).json()["model_version"]


def test_dvc_repro_runs_every_stage_pins_the_data_and_deploys_nothing(
    stack: Stack, gateway: str, served_champion: str, tmp_path
):
    project = tmp_path / "project"
    for name in COPIED:
        source, target = PROJECT_DIR / name, project / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, target)
    grid = promotable_grid()  # never "unchanged" from the champion when promotion is asked
    write_pipeline_config(project / "config" / "pipeline.yaml", grid, project / "processed")
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}:{os.environ['PATH']}",
        "MLFLOW_TRACKING_URI": stack.settings.mlflow_tracking_uri,
        "PRICE_CATEGORY_PIPELINE_CONFIG": str(project / "config" / "pipeline.yaml"),
        "PRICE_CATEGORY_PROJECT_DIR": str(project),
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
    for stage in STAGES:  # every declared stage ran, in the same run
        assert read_json(project / f"reports/{stage.name}.json")["run_id"] == prep["run_id"]
    assert set(read_json(project / "reports/train.json")["candidates"]) == {
        c["name"] for c in FAST_GRID
    }
    client = MlflowClient(stack.settings.mlflow_tracking_uri)
    parent = client.get_run(prep["parent_run_id"])
    assert parent.info.status == "FINISHED"
    # Logged to the experiments' own experiment, not the production pipeline's.
    experiment = client.get_experiment(parent.info.experiment_id)
    assert experiment.name == stack.settings.repro_experiment_name
    assert read_json(project / "reports/explain.json")["explained_rows"] == 100
    # Every candidate's model is logged to its run, and nothing staged is left behind.
    archived = read_json(project / "reports/archive.json")["models"]
    assert set(archived) == {c["name"] for c in FAST_GRID}
    assert archived[select["winner"]] == select["model_uri"]
    staged = client.list_artifacts(prep["parent_run_id"], STAGED_FOLDER)
    assert staged == []
    # Nothing was registered, and the champion and the version served are as before.
    assert select["decision"] == "not_registered" and select["version"] is None
    assert versions_of(client, stack, prep["run_id"]) == []
    assert str(Registry(stack.settings).champion().version) == served_champion
    time.sleep(GATEWAY_POLL_SECONDS + 1)  # a gateway process would have seen a moved alias
    assert served_version(gateway) == served_champion

    # Asked explicitly, select registers and gates the winner as a queued run would.
    asked = {**env, "PRICE_CATEGORY_PROMOTE_EXPERIMENT": "1", "REDIS_URL": stack.settings.redis_url}
    again = subprocess.run(
        [str(VENV_BIN / "python"), "-m", "services.workers.experiment", "select"],
        cwd=project, env=asked, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    decided = read_json(project / "reports/select.json")
    (version,) = versions_of(client, stack, prep["run_id"])
    assert decided["version"] == str(version.version)
    assert version.tags["decision"] == decided["decision"] in ("promoted", "not_promoted")


def versions_of(client: MlflowClient, stack: Stack, run_id: str) -> list:
    query = f"name = '{stack.settings.model_name}' and tags.pipeline_run_id = '{run_id}'"
    return list(client.search_model_versions(query))
