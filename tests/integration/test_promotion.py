"""Promotion as one critical section: overlapping selects, retried registrations."""

import threading

import pytest
from mlflow.tracking import MlflowClient
from mlflow.tracking._model_registry.client import ModelRegistryClient

from services.workers import promotion
from shared.registry import Registry
from tests.integration.conftest import (
    FAST_GRID,
    WEAK_GRID,
    Stack,
    gate_in_process,
    promotable_grid,
    retrain,
)

pytestmark = pytest.mark.integration


def test_overlapping_selects_leave_the_better_version_champion(
    stack: Stack, fast_run: dict, shipped_data: str, monkeypatch
):
    # A weak champion (the majority-class model, put there by hand) that both candidates beat.
    stack.write_grid(WEAK_GRID)
    weak = retrain(stack, shipped_data)["stages"]["select"]["version"]
    registry = Registry(stack.settings)
    registry.promote(weak)
    stack.write_grid(FAST_GRID)
    scores = {name: c["metrics"]["roc_auc_ovr"] for name, c in fast_run["candidates"].items()}
    assert scores["lgbm_all"] > scores["notebook_rf"] > 0.75  # better, worse, both pass alone

    # The barrier: the better select scores the champion and waits (up to 5 s) for the worse
    # one to have scored it too; the worse one moves the alias only after the better one did.
    # Without the lock the worse one decides against the weak champion and moves last.
    inside, worse_scored, better_moved = threading.Event(), threading.Event(), threading.Event()
    original_scores, original_promote = promotion._champion_scores, Registry.promote

    def champion_scores(*args, **kwargs):
        scores_now = original_scores(*args, **kwargs)
        if threading.current_thread().name == "better":
            inside.set()
            worse_scored.wait(5)
        else:
            worse_scored.set()
            better_moved.wait(60)
        return scores_now

    def promote(self, version):
        original_promote(self, version)
        if threading.current_thread().name == "better":
            better_moved.set()

    monkeypatch.setattr(promotion, "_champion_scores", champion_scores)
    monkeypatch.setattr(Registry, "promote", promote)
    decided = {}

    def gate(name: str, candidate: str) -> None:
        decided[name] = gate_in_process(stack, fast_run, candidate)

    better = threading.Thread(target=gate, args=("better", "lgbm_all"), name="better")
    worse = threading.Thread(target=gate, args=("worse", "notebook_rf"), name="worse")
    better.start()
    assert inside.wait(60)
    worse.start()
    better.join(120)
    worse.join(120)

    assert decided["better"]["promoted"] is True
    assert decided["worse"]["promoted"] is False
    assert decided["worse"]["champion_version"] == decided["better"]["version"]
    assert str(registry.champion().version) == decided["better"]["version"]


def test_a_retried_registration_leaves_one_version(stack: Stack, fast_run: dict, monkeypatch):
    # MLflow's HTTP client retries a POST whose reply was lost: the server sees it twice.
    original = ModelRegistryClient.create_model_version
    calls = []

    def create_twice(self, *args, **kwargs):
        calls.append(original(self, *args, **kwargs))
        calls.append(original(self, *args, **kwargs))
        return calls[-1]

    monkeypatch.setattr(ModelRegistryClient, "create_model_version", create_twice)
    stack.write_grid(promotable_grid())  # never "unchanged" from the champion: it registers

    decided = gate_in_process(stack, fast_run, "lgbm_all")

    assert len({str(created.version) for created in calls}) == 2  # the fault happened
    client = MlflowClient(stack.settings.mlflow_tracking_uri)
    run_id = client.get_model_version(stack.settings.model_name, decided["version"]).tags[
        "pipeline_run_id"
    ]
    versions = client.search_model_versions(
        f"name = '{stack.settings.model_name}' and tags.pipeline_run_id = '{run_id}'"
    )
    assert [str(v.version) for v in versions] == [decided["version"]]
    assert int(decided["version"]) == min(int(c.version) for c in calls)
