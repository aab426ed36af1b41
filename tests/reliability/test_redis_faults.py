"""Redis killed or frozen: queued work survives, the gateway fails fast where it needs Redis
and keeps predicting from memory, and everything reconnects on its own."""

import os
import re
import signal
import time
from collections import Counter

import pytest
import requests

from services.stack import processes
from shared.prediction_store import read_predictions
from tests.integration.conftest import GATEWAY_TOKEN, Stack, wait_for_run
from tests.reliability.faults import QUICK_GRID, PredictionLoop

pytestmark = pytest.mark.reliability
AUTH = {"Authorization": f"Bearer {GATEWAY_TOKEN}"}
FREEZE_SECONDS = 45


def restart_redis(stack: Stack) -> None:
    """kill -9, then a new redis-server on the same port and data folder."""
    old = stack.services["redis"]
    os.kill(old.pid, signal.SIGKILL)
    old.wait(10)
    stack.services["redis"], _ = processes.start_redis(
        stack.folder / "redis", stack.redis_password, stack.ports["redis"]
    )


def prediction_log_dropped(gateway: str) -> float:
    metrics = requests.get(f"{gateway}/metrics", timeout=10).text
    found = re.search(r"^gateway_prediction_log_dropped_total (\S+)$", metrics, re.MULTILINE)
    assert found, "no prediction-log counter in /metrics"
    return float(found[1])


def retrain(gateway: str, reason: str) -> requests.Response:
    return requests.post(
        f"{gateway}/retrain", json={"reason": reason, "force": True}, headers=AUTH, timeout=30
    )


def test_redis_killed_before_pickup_loses_no_job_and_everyone_reconnects(
    isolated_stack: Stack, fault_gateway: str
):
    stack = isolated_stack
    stack.write_grid(QUICK_GRID)
    workers = {queue: worker.pid for queue, worker in stack.workers.items()}
    prep = stack.workers["prep"]
    os.kill(prep.pid, signal.SIGSTOP)  # so that nobody picks the job up before Redis dies
    try:
        reply = retrain(fault_gateway, "before a Redis crash")
        assert reply.status_code == 202, reply.text
        run_id = reply.json()["run_id"]
        restart_redis(stack)
    finally:
        os.kill(prep.pid, signal.SIGCONT)

    run = wait_for_run(stack, run_id, timeout=180)

    assert run["state"] == "finished", run
    assert {q: w.pid for q, w in stack.workers.items()} == workers  # none restarted
    assert all(worker.poll() is None for worker in stack.workers.values())
    status = requests.get(f"{fault_gateway}/runs/{run_id}", timeout=10)
    assert status.status_code == 200
    assert status.json()["state"] == "finished"


def _stored_prediction_ids(stack: Stack) -> Counter:
    table = read_predictions(stack.settings.resolve(stack.settings.monitor_dir))
    return Counter(table["prediction_id"].to_pylist())


def test_frozen_redis_retrain_fails_fast_predictions_go_on_then_all_resumes(
    isolated_stack: Stack, fault_gateway: str
):
    stack = isolated_stack
    stack.write_grid(QUICK_GRID)
    redis = stack.services["redis"]
    frozen_at = time.monotonic()
    os.kill(redis.pid, signal.SIGSTOP)
    try:
        with PredictionLoop(fault_gateway) as predictions:
            started = time.monotonic()
            reply = retrain(fault_gateway, "while Redis is frozen")
            answered_in = time.monotonic() - started
            time.sleep(max(0.0, FREEZE_SECONDS - (time.monotonic() - frozen_at)))
    finally:
        os.kill(redis.pid, signal.SIGCONT)

    assert reply.status_code == 503, reply.text
    assert reply.json()["error"] == "redis_unavailable"
    assert answered_in < 10
    assert predictions.total > 100
    assert predictions.failures == {}
    # The prediction log could not write meanwhile: each gunicorn process kept the answers in
    # its buffer (room for 20,000 listings) and wrote them once Redis answered, each once.
    assert max(prediction_log_dropped(fault_gateway) for _ in range(10)) == 0
    answered = Counter(predictions.prediction_ids)
    deadline = time.monotonic() + 60
    while set(answered) - set(stored := _stored_prediction_ids(stack)):
        missing = len(set(answered) - set(stored))
        assert time.monotonic() < deadline, f"{missing} of {len(answered)} answers never stored"
        time.sleep(1)
    assert {pid: stored[pid] for pid in answered} == answered  # each once

    deadline = time.monotonic() + 30
    while (after := retrain(fault_gateway, "after Redis thawed")).status_code == 503:
        assert time.monotonic() < deadline, after.text  # a client honouring Retry-After
        time.sleep(int(after.headers["Retry-After"]))
    assert after.status_code == 202, after.text
    run = wait_for_run(stack, after.json()["run_id"], timeout=180)
    assert run["state"] == "finished", run
