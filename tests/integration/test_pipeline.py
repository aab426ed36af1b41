"""A retrain through real queues, workers, MLflow on PostgreSQL and Redis."""

import pytest
from mlflow.tracking import MlflowClient
from redis.client import PubSub
from rq.job import Job
from rq.serializers import JSONSerializer

from services.stack import processes
from services.workers.context import StageContext
from services.workers.select import run_select
from shared.launch import launch_run
from shared.pipeline import STAGE_NAMES, STAGES, RunInputs, stage_named
from shared.queues import connect, job_id
from tests.integration.conftest import (
    FAST_GRID,
    WEAK_GRID,
    Stack,
    promotable_grid,
    wait_for_run,
)

pytestmark = pytest.mark.integration


def retrain(stack: Stack, data_path: str) -> dict:
    run_id = launch_run(connect(stack.settings.redis_url), stack.settings, data_path)
    return wait_for_run(stack, run_id)


def champion_version(client: MlflowClient, stack: Stack) -> str:
    name, alias = stack.settings.model_name, stack.settings.champion_alias
    return str(client.get_model_version_by_alias(name, alias).version)


def published_versions(subscription: PubSub) -> list[str]:
    """Every promotion message received so far."""
    versions = []
    while message := subscription.get_message(timeout=1):
        if message["type"] == "message":
            versions.append(message["data"].decode())
    return versions


def test_retrain_promotes_then_weaker_grid_keeps_champion(stack: Stack, shipped_data: str):
    client = MlflowClient(stack.settings.mlflow_tracking_uri)
    stack.write_grid(promotable_grid())
    subscription = connect(stack.settings.redis_url).pubsub()
    subscription.subscribe(stack.settings.promotion_channel)

    first = retrain(stack, shipped_data)

    assert first["state"] == "finished", first
    assert {name: s["state"] for name, s in first["stages"].items()} == dict.fromkeys(
        STAGE_NAMES, "finished"
    )
    select = first["stages"]["select"]
    assert select["promoted"] is True
    assert champion_version(client, stack) == select["version"]
    assert published_versions(subscription) == [select["version"]]
    # One parent run per pipeline run, with a data-quality run and a child run per candidate.
    prep = first["stages"]["prep"]
    parent = client.get_run(prep["parent_run_id"])
    assert parent.info.status == "FINISHED"
    assert len(parent.data.tags["data_hash"]) == 32
    quality = client.get_run(prep["data_quality_run_id"])
    assert quality.data.metrics["rows_in"] == 28656
    assert quality.data.metrics["rows_out"] == 28642
    for candidate in FAST_GRID:
        child = client.get_run(first["candidates"][candidate["name"]]["mlflow_run_id"])
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert 0.5 < child.data.metrics["accuracy"] < 1
        assert {
            "f1_macro",
            "roc_auc_ovr",
            "recall_lux",
            "fit_seconds",
            "model_size_bytes",
            "predict_ms_single_row",
        } <= set(child.data.metrics)
        # Every candidate's model ends up logged to its run (the winner's by select, the others'
        # by archive), and no staged copy outlives the run.
        assert (
            child.data.tags["model_uri"] == first["stages"]["archive"]["models"][candidate["name"]]
        )
    assert stack.staged_models(first["run_id"]) == []
    # The version knows where it came from and why it took the alias.
    version = client.get_model_version(stack.settings.model_name, select["version"])
    assert version.tags["pipeline_run_id"] == first["run_id"]
    assert version.tags["data_hash"] == parent.data.tags["data_hash"]
    assert version.tags["decision"] == "promoted"
    # The candidate report: in the run's status and as MLflow artifacts, the winner marked.
    report = {row["candidate"]: row for row in select["report"]}
    assert set(report) == {c["name"] for c in FAST_GRID}
    assert report[select["winner"]]["winner"] is True
    assert sum(row["winner"] for row in report.values()) == 1
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    assert {"report/candidates.md", "report/candidates.json"} <= artifacts
    # SHAP and evaluation artifacts on the winner's run.
    winner_run = select["winner_run_id"]
    explained = {a.path for a in client.list_artifacts(winner_run, "explain")}
    assert {
        "explain/importances.json",
        "explain/importance_bars.png",
        "explain/beeswarm_lux.png",
        "explain/categories_lux.png",
    } <= explained
    evaluation = {a.path for a in client.list_artifacts(winner_run, "evaluation")}
    assert {
        "evaluation/confusion_matrix.png",
        "evaluation/class_report.png",
        "evaluation/price_by_neighbourhood.png",
        "evaluation/calibration.png",
    } <= evaluation

    stack.write_grid(WEAK_GRID)
    second = retrain(stack, shipped_data)

    assert second["state"] == "finished", second
    assert second["stages"]["select"]["promoted"] is False
    assert champion_version(client, stack) == select["version"]
    kept = client.get_model_version(
        stack.settings.model_name, second["stages"]["select"]["version"]
    )
    assert kept.tags["decision"] == "not_promoted"
    assert float(kept.tags["champion_score"]) > float(kept.tags["score"])
    # The majority-class model is at chance: below the floor and below the champion, both named.
    assert second["stages"]["select"]["failed_conditions"] == [
        "champion_now",
        "max_drop",
        "min_score",
    ]
    assert "below the floor 0.7500" in kept.tags["reason"]
    assert kept.tags["reason"] == second["stages"]["select"]["reason"]
    # The same raw file was cleaned once and reused; nothing was published this time.
    assert second["stages"]["prep"]["dataset_run_id"] == prep["dataset_run_id"]
    assert published_versions(subscription) == []
    subscription.close()


@pytest.fixture(scope="module")
def finished_run(stack: Stack, shipped_data: str) -> dict:
    """One completed run on the fast grid, for the tests that only inspect a run."""
    stack.write_grid(FAST_GRID)
    run = retrain(stack, shipped_data)
    assert run["state"] == "finished", run
    return run


def test_jobs_are_json_with_timeouts_retries_and_derived_ids(stack: Stack, finished_run: dict):
    run = finished_run
    redis = connect(stack.settings.redis_url)
    for stage in STAGES:
        if stage.per_candidate:
            continue
        job = Job.fetch(
            job_id(run["run_id"], stage.name), connection=redis, serializer=JSONSerializer
        )
        assert job.timeout == stage.timeout_in(stack.settings)
        assert job.origin == stage.queue
        assert job.args == [stage.name, run["run_id"]]
        assert job.retry_intervals == [1, 2]
        # The run is finished once its last stage records its end; RQ marks that stage's job
        # finished a moment later, when the job function returns.
        processes.wait_until(
            lambda job=job: job.get_status() == "finished", 10, f"{job.id} finished"
        )
        assert job.description.endswith(job_id(run["run_id"], stage.name))
    train = Job.fetch(
        job_id(run["run_id"], "train", "lgbm_all"), connection=redis, serializer=JSONSerializer
    )
    assert train.timeout == stage_named("train").timeout_in(stack.settings)
    assert train.args == ["train", run["run_id"], "lgbm_all"]


def test_select_run_twice_registers_no_second_version(stack: Stack, finished_run: dict):
    run = finished_run
    client = MlflowClient(stack.settings.mlflow_tracking_uri)
    name = stack.settings.model_name
    versions_before = len(client.search_model_versions(f"name = '{name}'"))
    again = run_select(StageContext(stack.settings), RunInputs.of_run(run))

    assert again.version == run["stages"]["select"]["version"]
    assert again.promoted == run["stages"]["select"]["promoted"]
    assert len(client.search_model_versions(f"name = '{name}'")) == versions_before


def test_bad_data_fails_the_run_at_once_and_keeps_the_champion(stack: Stack, corrupt_data: str):
    client = MlflowClient(stack.settings.mlflow_tracking_uri)
    before = client.search_model_versions(f"name = '{stack.settings.model_name}'")
    champion_before = {str(v.version) for v in before if "champion" in v.aliases}

    run = retrain(stack, corrupt_data)

    assert run["state"] == "failed"
    prep = run["stages"]["prep"]
    assert prep["state"] == "failed"
    assert prep["attempts"] == 1  # a data error is not retried
    assert "neighbourhood_group_cleansed" in prep["error"]
    assert "amenities" in prep["error"]
    assert run["stages"]["select"]["state"] == "pending"
    after = client.search_model_versions(f"name = '{stack.settings.model_name}'")
    assert len(after) == len(before)
    assert {str(v.version) for v in after if "champion" in v.aliases} == champion_before
