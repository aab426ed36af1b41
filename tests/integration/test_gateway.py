"""The gateway under gunicorn, on the real stack: retrain over HTTP, live swap, monitoring."""

import json
import os
import subprocess
import threading
import time

import pytest
import requests

from services.stack import processes
from services.stack.processes import VENV_BIN
from shared.contracts import CHALLENGE_EXAMPLE
from shared.pipeline import QUEUES
from shared.settings import PROJECT_DIR
from tests.integration.conftest import (
    DASHBOARD,
    FAST_GRID,
    GATEWAY_POLL_SECONDS,
    GATEWAY_TOKEN,
    Stack,
    promotable_grid,
)

pytestmark = pytest.mark.integration

EXAMPLE = CHALLENGE_EXAMPLE
AUTH = {"Authorization": f"Bearer {GATEWAY_TOKEN}"}


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.5)
    raise AssertionError(f"{what} not seen within {timeout}s")


class Hammer(threading.Thread):
    """Sends predictions until stopped, recording every status and version answered.

    About 50 a second: enough to catch a failed swap, light enough not to starve training
    of the two cores (load is the reliability suite's job)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.stopping, self.answers = url, threading.Event(), []

    def run(self) -> None:
        with requests.Session() as session:
            while not self.stopping.is_set():
                reply = session.post(f"{self.url}/predict", json=EXAMPLE, timeout=10)
                version = reply.json()["model_version"] if reply.ok else None
                self.answers.append((reply.status_code, version))
                self.stopping.wait(0.02)

    def statuses_once_serving(self) -> set[int]:
        """Statuses from the first success on (503 before any champion exists is expected)."""
        codes = [status for status, _ in self.answers]
        return set(codes[codes.index(200) :]) if 200 in codes else set(codes)


def served(gateway: str, version: str) -> bool:
    reply = requests.post(f"{gateway}/predict", json=EXAMPLE, timeout=10)
    return reply.ok and reply.json()["model_version"] == version


def cli(gateway: str, *args: str) -> subprocess.CompletedProcess:
    command = [str(VENV_BIN / "price-category"), "--url", gateway, *args]
    env = {**os.environ, "RETRAIN_TOKEN": GATEWAY_TOKEN}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)


def test_two_promotions_swap_live_with_zero_failed_predictions(stack: Stack, gateway: str):
    stack.write_grid(promotable_grid())
    hammer = Hammer(gateway)
    hammer.start()

    accepted = requests.post(
        f"{gateway}/retrain", json={"reason": "<b>test</b>"}, headers=AUTH, timeout=10
    )
    assert accepted.status_code == 202, accepted.text
    run_id = accepted.json()["run_id"]
    assert accepted.headers["Location"] == f"/runs/{run_id}"
    busy = requests.post(f"{gateway}/retrain", headers=AUTH, timeout=10)
    assert busy.status_code == 409
    assert busy.json()["run_id"] == run_id

    def finished():
        run = requests.get(f"{gateway}/runs/{run_id}", timeout=10).json()
        return run if run["state"] in ("finished", "failed") else None

    run = wait_for(finished, 300, "run end")
    assert run["state"] == "finished"
    assert run["reason"] == "<b>test</b>"  # stored as given, served as JSON text
    # GET /runs needs no credentials: it names no absolute path of the server.
    assert str(stack.folder) not in json.dumps(run) and str(PROJECT_DIR) not in json.dumps(run)
    first = run["stages"]["select"]["version"]
    assert run["stages"]["select"]["promoted"] is True
    assert set(run["candidates"]) == {c["name"] for c in FAST_GRID}
    assert all("roc_auc_ovr" in c["metrics"] for c in run["candidates"].values())
    wait_for(lambda: served(gateway, first), 30, f"version {first} served")
    # Every gateway process has loaded it within one alias poll: from here on, a promotion
    # is a swap, and a swap must not fail a single request.
    time.sleep(GATEWAY_POLL_SECONDS + 1)
    swaps_from = len(hammer.answers)

    # The second promotion comes through the command-line client, while the hammer goes on.
    stack.write_grid(promotable_grid())
    second_run = cli(gateway, "retrain", "--wait", "--reason", "second")
    assert second_run.returncode == 0, second_run.stderr
    assert "promoted to champion" in second_run.stdout
    assert "explain=finished" in second_run.stdout
    second = requests.get(f"{gateway}/runs?limit=1", timeout=10).json()["runs"][0]
    second_version = second["stages"]["select"]["version"]
    assert int(second_version) > int(first)
    wait_for(lambda: served(gateway, second_version), 30, f"version {second_version} served")

    hammer.stopping.set()
    hammer.join(15)
    assert hammer.statuses_once_serving() <= {200, 503}  # 503: a process not yet serving one
    assert {status for status, _ in hammer.answers[swaps_from:]} == {200}
    assert {first, second_version} <= {version for _, version in hammer.answers}

    model = requests.get(f"{gateway}/model", timeout=10).json()
    assert model["version"] == second_version
    assert model["pipeline_run_id"] == second["run_id"]
    assert len(model["data_hash"]) == 32 and model["git_commit"]
    assert "scikit-learn" in model["libraries"]
    assert 0.5 < model["metrics"]["roc_auc_ovr"] <= 1
    assert set(model["importances"]) == {"Low", "Mid", "High", "Lux"}
    ready = requests.get(f"{gateway}/health/ready", timeout=10)
    assert ready.status_code == 200 and ready.json()["model_version"] == second_version


def test_cli_predicts_lists_runs_and_shows_the_model(gateway: str, served_champion: str, tmp_path):
    listings = tmp_path / "listings.json"
    listings.write_text(json.dumps([EXAMPLE, {**EXAMPLE, "id": 7, "neighbourhood": "Bronx"}]))
    predicted = cli(gateway, "predict", str(listings))
    assert predicted.returncode == 0, predicted.stderr
    lines = predicted.stdout.splitlines()
    assert lines[0].split() == [
        *("id", "category", "Low", "Mid", "High", "Lux"),
        *("price", "(80%", "interval)", "version"),
    ]
    assert [line.split()[0] for line in lines[1:]] == ["1001", "7"]
    # The price as the API answers it: "$322 ($204-$514)", or "-" from a model without one.
    answers = requests.post(f"{gateway}/predict", json=json.loads(listings.read_text()), timeout=10)
    for line, answer in zip(lines[1:], answers.json()["predictions"], strict=True):
        price = "-"
        if "estimated_price" in answer:
            low, high = answer["price_interval"]
            price = f"${answer['estimated_price']:.0f} (${low:.0f}-${high:.0f})"
        assert f"  {price}  " in line
    assert cli(gateway, "runs", "--limit", "3").stdout.splitlines()[0].split()[:3] == [
        "run",
        "created",
        "state",
    ]
    assert "champion version" in cli(gateway, "model").stdout
    refused = cli(gateway, "predict", "--json", json.dumps({**EXAMPLE, "bedroom": 1}))
    assert refused.returncode == 2
    assert "bedroom" in refused.stderr


def test_idempotency_key_returns_the_same_run(stack: Stack, gateway: str):
    stack.write_grid(FAST_GRID)
    headers = {**AUTH, "Idempotency-Key": f"key-{time.time()}"}
    first = requests.post(f"{gateway}/retrain", headers=headers, timeout=10)
    again = requests.post(f"{gateway}/retrain", headers=headers, timeout=10)
    assert first.status_code == again.status_code == 202
    assert again.json()["run_id"] == first.json()["run_id"]
    run_id = first.json()["run_id"]
    # The same key with another body is refused, naming the key; nothing new is queued.
    for changed in ({"force": True}, {"reason": "other"}):
        reused = requests.post(f"{gateway}/retrain", headers=headers, json=changed, timeout=10)
        assert reused.status_code == 422, reused.text
        assert reused.json()["error"] == "idempotency_key_reused"
        assert [f["path"] for f in reused.json()["fields"]] == ["Idempotency-Key"]
        assert reused.json()["run_id"] == run_id
    assert requests.get(f"{gateway}/runs?limit=1", timeout=10).json()["runs"][0]["run_id"] == run_id
    wait_for(
        lambda: (
            requests.get(f"{gateway}/runs/{run_id}", timeout=10).json()["state"]
            in ("finished", "failed")
        ),
        300,
        "run end",
    )
    runs = requests.get(f"{gateway}/runs?limit=5", timeout=10).json()["runs"]
    assert runs[0]["run_id"] == run_id  # newest first


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"data_path": "../pyproject.toml"}, 400, "data_path"),
        ({"data_path": "/etc/passwd"}, 400, "data_path"),
        ({"data_path": "data/raw/absent.csv"}, 400, "data_path"),
        ({"data_path": "data/raw/listings.csv.gz", "sneaky": 1}, 422, "sneaky"),
    ],
)
def test_retrain_rejects_bad_bodies_and_enqueues_nothing(stack, gateway, body, status, field):
    before = requests.get(f"{gateway}/runs?limit=1", timeout=10).json()["runs"]
    reply = requests.post(f"{gateway}/retrain", json=body, headers=AUTH, timeout=10)
    assert reply.status_code == status
    assert field in [entry["path"] for entry in reply.json()["fields"]]
    assert requests.get(f"{gateway}/runs?limit=1", timeout=10).json()["runs"] == before


def test_unknown_run_is_404(gateway: str):
    assert requests.get(f"{gateway}/runs/no-such-run", timeout=10).status_code == 404


def test_dashboard_and_metrics_see_the_queues(gateway: str):
    page = requests.get(f"{gateway}/rq/", auth=DASHBOARD, timeout=10)
    assert page.status_code == 200
    queues = requests.get(f"{gateway}/rq/0/data/queues.json", auth=DASHBOARD, timeout=10)
    assert set(QUEUES) <= {q["name"] for q in queues.json()["queues"]}
    metrics = requests.get(f"{gateway}/metrics", timeout=10).text
    assert 'rq_jobs{queue="train",state="queued"}' in metrics


def test_standalone_dashboard_needs_its_credentials(stack: Stack):
    env = {
        "RQ_DASHBOARD_REDIS_URL": stack.settings.redis_url,
        "RQ_DASHBOARD_USERNAME": DASHBOARD[0],
        "RQ_DASHBOARD_PASSWORD": DASHBOARD[1],
    }
    process, port = processes.start_dashboard(stack.folder / "rq-dashboard", env)
    try:
        url = f"http://127.0.0.1:{port}"
        assert requests.get(f"{url}/", timeout=10).status_code == 401
        queues = requests.get(f"{url}/0/data/queues.json", auth=DASHBOARD, timeout=10)
        assert set(QUEUES) <= {q["name"] for q in queues.json()["queues"]}
    finally:
        processes.stop(process)
