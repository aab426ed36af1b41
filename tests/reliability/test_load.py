"""Concurrency and load: simultaneous retrains, champion swaps under traffic, predictions
under load while a retrain uses the same machine."""

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from mlflow.tracking import MlflowClient

from services.gateway.admission import default_slots
from services.stack import processes
from shared.contracts import CHALLENGE_EXAMPLE
from shared.queues import connect, publish_promotion
from shared.registry import Registry
from shared.settings import PROJECT_DIR
from tests.integration.conftest import GATEWAY_TOKEN, Stack, wait_for_run
from tests.reliability.faults import QUICK_GRID, PredictionLoop

pytestmark = pytest.mark.reliability
AUTH = {"Authorization": f"Bearer {GATEWAY_TOKEN}"}
LOAD_SECONDS = 60


def post_retrain(gateway: str, n: int) -> requests.Response:
    return requests.post(
        f"{gateway}/retrain", json={"reason": f"concurrent {n}"}, headers=AUTH, timeout=30
    )


def test_ten_simultaneous_retrains_start_one_run_and_the_alias_ends_on_a_finished_best(
    isolated_stack: Stack, fault_gateway: str
):
    stack = isolated_stack
    stack.write_grid(QUICK_GRID)
    with ThreadPoolExecutor(max_workers=10) as pool:
        replies = list(pool.map(lambda n: post_retrain(fault_gateway, n), range(10)))

    statuses = sorted(reply.status_code for reply in replies)
    assert statuses == [202] + [409] * 9, [r.text for r in replies]
    run_id = next(r.json()["run_id"] for r in replies if r.status_code == 202)
    assert all(r.json()["run_id"] == run_id for r in replies if r.status_code == 409)
    run = wait_for_run(stack, run_id)
    assert run["state"] == "finished", run

    client = MlflowClient(stack.settings.mlflow_tracking_uri)
    champion = client.get_model_version_by_alias(stack.settings.model_name, "champion")
    assert champion.status == "READY"
    assert client.get_run(champion.run_id).info.status == "FINISHED"
    best = max(
        float(v.tags.get("score", "-inf"))
        for v in client.search_model_versions(f"name = '{stack.settings.model_name}'")
    )
    assert float(champion.tags["score"]) == best


def test_three_champion_swaps_under_a_thousand_predictions_lose_none(
    isolated_stack: Stack, fault_gateway: str
):
    stack = isolated_stack
    registry = Registry(stack.settings)
    redis = connect(stack.settings.redis_url)
    current = registry.champion()
    model_uri = current.source
    with PredictionLoop(fault_gateway) as predictions:
        for swap in range(3):
            version = str(registry.register(model_uri, {"swap": str(swap)}).version)
            registry.promote(version)
            publish_promotion(redis, stack.settings, version)
            processes.wait_until(
                lambda version=version: version in predictions.versions, 60, f"serving {version}"
            )
        while predictions.total < 1000:
            time.sleep(0.1)

    assert predictions.failures == {}
    assert predictions.total >= 1000
    assert len(predictions.versions) >= 4  # the first champion and three swaps


def test_a_minute_of_load_during_a_retrain_has_no_errors(isolated_stack: Stack, fault_gateway: str):
    stack = isolated_stack
    stack.write_grid(QUICK_GRID)
    load = subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.load_client", f"{fault_gateway}/predict",
         str(LOAD_SECONDS), "8"],
        cwd=PROJECT_DIR, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(2)
        reply = requests.post(
            f"{fault_gateway}/retrain",
            json={"reason": "under load", "force": True},
            headers=AUTH,
            timeout=30,
        )
        assert reply.status_code == 202, reply.text
        run = wait_for_run(stack, reply.json()["run_id"], timeout=LOAD_SECONDS + 120)
        output, _ = load.communicate(timeout=LOAD_SECONDS + 60)
    finally:
        processes.stop(load)

    result = json.loads(output.strip().splitlines()[-1])
    print(f"60 s, 8 connections, retrain alongside: {result}")  # noqa: T201 - the p99 figure
    assert run["state"] == "finished", run
    assert set(result["statuses"]) == {"200"}, result
    assert sum(result["statuses"].values()) > 1000


def test_explanations_beyond_their_slots_are_refused_at_once_and_predictions_go_on(
    fault_gateway: str,
):
    # More clients looping explanations at the cap than there are slots (cores - 1 by
    # default), beside a steady client predicting single listings.
    explaining = default_slots() + 3
    batch = [{**CHALLENGE_EXAMPLE, "id": i} for i in range(25)]
    deadline = time.monotonic() + 10
    explained: list[requests.Response] = []
    predicted: list[int] = []

    def explain() -> None:
        with requests.Session() as session:
            while time.monotonic() < deadline:
                url = f"{fault_gateway}/predict?explain=true"
                explained.append(session.post(url, json=batch, timeout=60))

    def predict() -> None:
        with requests.Session() as session:
            while time.monotonic() < deadline:
                url = f"{fault_gateway}/predict"
                predicted.append(session.post(url, json=CHALLENGE_EXAMPLE, timeout=60).status_code)

    with ThreadPoolExecutor(max_workers=explaining + 1) as pool:
        for future in [pool.submit(explain) for _ in range(explaining)] + [pool.submit(predict)]:
            future.result()

    refused = [reply for reply in explained if reply.status_code == 429]
    answered = [reply for reply in explained if reply.status_code != 429]
    assert refused, "no explanation was ever refused: nothing bounds how many run at once"
    assert all(reply.json()["error"] == "explain_busy" for reply in refused)
    assert all(reply.headers["Retry-After"] == "1" for reply in refused)
    assert answered and all(reply.status_code == 200 for reply in answered)
    assert all(len(answer["explanation"]) == 5 for answer in answered[0].json()["predictions"])
    assert predicted and set(predicted) == {200}
