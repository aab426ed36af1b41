"""Rolling back, pinning and the history, on the real stack and the session's gunicorn gateway."""

import time

import mlflow
import pytest
import requests
from sklearn.dummy import DummyClassifier

from shared.registry import Registry
from shared.tracking import Tracker, tracking_uri
from tests.integration.conftest import (
    GATEWAY_TOKEN,
    WEAK_GRID,
    Stack,
    gate_in_process,
    promotable_grid,
    retrain,
)
from tests.reliability.faults import PredictionLoop

pytestmark = pytest.mark.integration
AUTH = {"Authorization": f"Bearer {GATEWAY_TOKEN}"}


def registered_again(stack: Stack, version: str) -> str:
    """A new version of the same logged model as version: loadable, never promoted."""
    registry = Registry(stack.settings)
    source = registry.version(version).source
    return str(registry.register(source, {"test": "lifecycle"}).version)


def pickled_version(stack: Stack) -> str:
    """A version whose model is a pickle: this code refuses to load it (it would run code)."""
    tracker = Tracker(stack.settings)
    run = tracker.client.create_run(tracker.experiment_id, run_name="pickled")
    model = DummyClassifier().fit([[0], [1]], ["Low", "Lux"])
    with tracking_uri(stack.settings.mlflow_tracking_uri):
        info = mlflow.sklearn.log_model(
            model, name="model", run_id=run.info.run_id, serialization_format="cloudpickle"
        )
    return str(Registry(stack.settings).register(info.model_uri, {"test": "pickled"}).version)


def champion(stack: Stack) -> str:
    return str(Registry(stack.settings).champion().version)


def test_a_rollback_under_load_fails_no_prediction_and_every_process_follows(
    stack: Stack, gateway: str, served_champion: str
):
    other = registered_again(stack, served_champion)
    events = requests.get(f"{gateway}/model/history", timeout=30).json()["events"]
    # Where a rollback from `other` (never promoted) goes: the last version the gate promoted.
    last_promoted = next(e["version"] for e in events if e["action"] == "promoted")
    with PredictionLoop(gateway, clients=4) as clients:
        time.sleep(2)
        reply = requests.post(
            f"{gateway}/model/rollback",
            json={"version": other, "reason": "drill"},
            headers=AUTH,
            timeout=60,
        )
        answered = time.monotonic()
        assert reply.status_code == 200, reply.text
        time.sleep(5)
        back = requests.post(f"{gateway}/model/rollback", headers=AUTH, timeout=60)
        assert back.status_code == 200, back.text
        time.sleep(3)

    moved = reply.json()
    assert (moved["version"], moved["from_version"]) == (other, served_champion)
    assert moved["action"] == "rolled_back" and moved["reason"] == "drill"
    assert moved["by"]["token"] == "retrain" and moved["by"]["request_id"]
    # Without a version it goes back to the version promoted before.
    assert back.json()["version"] == last_promoted
    assert champion(stack) == last_promoted
    assert clients.failures == {}
    assert len(clients.answered) >= 1_000
    # Every gateway process serves the rolled-back version within 2 s of the answer.
    after = [v for at, v in clients.answered if answered + 2 < at < answered + 5]
    assert after and set(after) == {other}
    assert {v for _, v in clients.answered} >= {served_champion, other, last_promoted}

    events = requests.get(f"{gateway}/model/history", timeout=30).json()["events"]
    assert [(e["action"], e["version"], e["from_version"]) for e in events[:2]] == [
        ("rolled_back", last_promoted, other),
        ("rolled_back", other, served_champion),
    ]
    promotion = next(e for e in events if e["action"] == "promoted")
    # Who asked: the run whose gate promoted it, or the token of a challenger promoted by hand.
    assert promotion["version"] == last_promoted
    assert promotion["by"].get("run_id") or promotion["by"]["token"] == "retrain"
    if last_promoted != served_champion:  # an earlier test moved the alias by hand: put it back
        requests.post(
            f"{gateway}/model/rollback", json={"version": served_champion}, headers=AUTH, timeout=60
        ).raise_for_status()


def test_a_version_this_code_would_not_serve_is_refused_and_nothing_moves(
    stack: Stack, gateway: str, served_champion: str
):
    pickled = pickled_version(stack)
    before = requests.get(f"{gateway}/model/history", timeout=30).json()["events"]

    refused = requests.post(
        f"{gateway}/model/rollback", json={"version": pickled}, headers=AUTH, timeout=60
    )
    missing = requests.post(
        f"{gateway}/model/rollback", json={"version": 99999}, headers=AUTH, timeout=60
    )
    same = requests.post(
        f"{gateway}/model/rollback", json={"version": served_champion}, headers=AUTH, timeout=60
    )

    assert refused.status_code == 422, refused.text
    assert refused.json()["error"] == "version_unservable"
    assert "skops" in refused.json()["message"]
    assert refused.json()["fields"][0]["path"] == "version"
    assert (missing.status_code, missing.json()["error"]) == (404, "version_not_found")
    assert (same.status_code, same.json()["error"]) == (409, "already_champion")
    assert champion(stack) == served_champion
    assert requests.get(f"{gateway}/model/history", timeout=30).json()["events"] == before


def test_a_pin_keeps_the_champion_from_a_better_run_that_says_it_would_promote(
    stack: Stack,
    gateway: str,
    served_champion: str,
    shipped_data: str,
    fast_run: dict,
):
    # A weak champion (the majority-class model, put there by hand) that the run's model beats.
    stack.write_grid(WEAK_GRID)
    weak = retrain(stack, shipped_data)["stages"]["select"]["version"]
    Registry(stack.settings).promote(weak)
    pinned = requests.post(
        f"{gateway}/model/pin", json={"pin": True, "reason": "freeze"}, headers=AUTH, timeout=60
    )
    try:
        stack.write_grid(promotable_grid())  # never "unchanged" from the champion: it registers
        decided = gate_in_process(stack, fast_run, "lgbm_all")
    finally:
        lifted = requests.post(
            f"{gateway}/model/pin", json={"pin": False}, headers=AUTH, timeout=60
        )
        restored = requests.post(
            f"{gateway}/model/rollback", json={"version": served_champion}, headers=AUTH, timeout=60
        )

    assert pinned.status_code == 200, pinned.text
    assert pinned.json()["pinned"]["reason"] == "freeze"
    assert decided["decision"] == "pinned" and decided["promoted"] is False
    assert "would promote (passed every condition" in decided["reason"]
    assert "freeze" in decided["reason"]
    assert Registry(stack.settings).version(decided["version"]).tags["decision"] == "pinned"
    assert lifted.status_code == 200 and lifted.json()["pinned"] is None
    assert restored.status_code == 200, restored.text
    history = requests.get(f"{gateway}/model/history", timeout=30).json()
    assert history["pinned"] is None
    assert [(e["action"], e["version"]) for e in history["events"][:3]] == [
        ("rolled_back", served_champion),
        ("unpinned", weak),
        ("pinned", weak),
    ]
