"""The gateway under gunicorn, on the real stack: retrain over HTTP, live swap, monitoring."""

import threading
import time
from collections.abc import Iterator

import pytest
import requests

from services.stack import processes
from shared.contracts import CHALLENGE_EXAMPLE
from tests.integration.conftest import FAST_GRID, Stack

pytestmark = pytest.mark.integration

TOKEN = "integration-token"
EXAMPLE = CHALLENGE_EXAMPLE
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def gateway(stack: Stack) -> Iterator[str]:
    env = {**stack.env, "RETRAIN_TOKEN": TOKEN, "DASHBOARD_USER": "ops",
           "DASHBOARD_PASSWORD": "dash", "ALIAS_POLL_SECONDS": "5"}  # fmt: skip
    process, port = processes.start_gateway(stack.folder / "gateway", env)
    yield f"http://127.0.0.1:{port}"
    processes.stop(process)


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.5)
    raise AssertionError(f"{what} not seen within {timeout}s")


class Hammer(threading.Thread):
    """Sends predictions until stopped, recording every status and version answered."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.stopping, self.statuses, self.versions = url, threading.Event(), [], set()

    def run(self) -> None:
        with requests.Session() as session:
            while not self.stopping.is_set():
                reply = session.post(f"{self.url}/predict", json=EXAMPLE, timeout=10)
                self.statuses.append(reply.status_code)
                if reply.ok:
                    self.versions.add(reply.json()["model_version"])


def test_retrain_over_http_swaps_the_champion_live(stack: Stack, gateway: str):
    stack.write_grid(FAST_GRID)
    had_champion = requests.post(f"{gateway}/predict", json=EXAMPLE, timeout=10).ok
    hammer = Hammer(gateway)
    hammer.start()

    accepted = requests.post(f"{gateway}/retrain", json={"reason": "<b>test</b>"}, headers=AUTH,
                             timeout=10)  # fmt: skip
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
    version = run["stages"]["select"]["version"]
    assert run["stages"]["select"]["promoted"] is True
    assert set(run["candidates"]) == {c["name"] for c in FAST_GRID}
    assert all("roc_auc_ovr" in c["metrics"] for c in run["candidates"].values())

    def served():
        reply = requests.post(f"{gateway}/predict", json=EXAMPLE, timeout=10)
        return reply.ok and reply.json()["model_version"] == version

    wait_for(served, 30, f"version {version} served")  # well before the 5 s poll would repeat
    hammer.stopping.set()
    hammer.join(15)
    allowed = {200} if had_champion else {200, 503}
    assert set(hammer.statuses) <= allowed, sorted(set(hammer.statuses))
    assert version in hammer.versions

    model = requests.get(f"{gateway}/model", timeout=10).json()
    assert model["version"] == version
    assert model["pipeline_run_id"] == run_id
    assert len(model["data_hash"]) == 32 and model["git_commit"]
    assert "scikit-learn" in model["libraries"]
    assert 0.5 < model["metrics"]["roc_auc_ovr"] <= 1
    assert set(model["importances"]) == {"Low", "Mid", "High", "Lux"}
    ready = requests.get(f"{gateway}/health/ready", timeout=10)
    assert ready.status_code == 200 and ready.json()["model_version"] == version


def test_idempotency_key_returns_the_same_run(stack: Stack, gateway: str):
    stack.write_grid(FAST_GRID)
    headers = {**AUTH, "Idempotency-Key": f"key-{time.time()}"}
    first = requests.post(f"{gateway}/retrain", headers=headers, timeout=10)
    again = requests.post(f"{gateway}/retrain", headers=headers, timeout=10)
    assert first.status_code == again.status_code == 202
    assert again.json()["run_id"] == first.json()["run_id"]
    run_id = first.json()["run_id"]
    wait_for(lambda: requests.get(f"{gateway}/runs/{run_id}", timeout=10).json()["state"]
             in ("finished", "failed"), 300, "run end")  # fmt: skip
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
    page = requests.get(f"{gateway}/rq/", auth=("ops", "dash"), timeout=10)
    assert page.status_code == 200
    queues = requests.get(f"{gateway}/rq/0/data/queues.json", auth=("ops", "dash"), timeout=10)
    assert {"prep", "train", "explain"} <= {q["name"] for q in queues.json()["queues"]}
    metrics = requests.get(f"{gateway}/metrics", timeout=10).text
    assert 'rq_queue_depth{queue="train"}' in metrics
