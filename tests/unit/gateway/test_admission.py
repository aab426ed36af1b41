"""Explanation slots: at most N held at once across processes, freed by a holder's death."""

import os
import signal
import subprocess
import sys

import pytest

from services.gateway.admission import NoSlotFree, WorkSlots, default_slots
from services.gateway.app import create_app
from shared.contracts import CHALLENGE_EXAMPLE

HOLD = """
import sys, time
from pathlib import Path
from services.gateway.admission import WorkSlots
with WorkSlots(Path(sys.argv[1]), 1).held():
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_slot_is_held_by_one_request_at_a_time(tmp_path):
    slots = WorkSlots(tmp_path, 2)
    with slots.held(), slots.held(), pytest.raises(NoSlotFree), slots.held():
        pass
    with slots.held():  # released when the blocks ended, also by an error inside them
        pass


def test_a_slot_held_by_another_process_is_freed_when_it_is_killed(tmp_path):
    slots = WorkSlots(tmp_path, 1)
    with subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    ) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "held\n"
            with pytest.raises(NoSlotFree), slots.held():
                pass
            os.kill(holder.pid, signal.SIGKILL)
            holder.wait(timeout=10)
            with slots.held():
                pass
        finally:
            holder.kill()  # whatever failed above: never left holding it for a minute


def test_one_core_is_left_to_predictions():
    assert [default_slots(cores) for cores in (1, 2, 8)] == [1, 1, 7]


def test_an_explanation_with_every_slot_busy_is_429_and_predictions_go_on(settings, source):
    app = create_app(settings.model_copy(update={"work_slots": 1}), source, False)
    app.extensions["gateway"].cache.refresh()
    client = app.test_client()
    with app.extensions["gateway"].work_slots.held():  # another process explaining
        refused = client.post("/predict?explain=true", json=CHALLENGE_EXAMPLE)
        assert refused.status_code == 429  # at once: a request that waited would hang here
        assert refused.get_json()["error"] == "explain_busy"
        assert refused.headers["Retry-After"] == "1"
        assert client.post("/predict", json=CHALLENGE_EXAMPLE).status_code == 200
    assert client.post("/predict?explain=true", json=CHALLENGE_EXAMPLE).status_code == 200


def test_a_big_batch_with_every_slot_busy_is_answered_on_one_thread(settings, source, monkeypatch):
    from services.gateway import predicting

    threads_used = []
    predict = predicting.predict_matrix

    def counting(pipeline, records, threads=1):
        threads_used.append(threads)
        return predict(pipeline, records, threads)

    monkeypatch.setattr(predicting, "predict_matrix", counting)
    rows = predicting.PARALLEL_BATCH_ROWS
    roomy = {"work_slots": 1, "max_batch": rows, "max_body_bytes": 2**24, "batch_threads": 2}
    app = create_app(settings.model_copy(update=roomy), source, False)
    app.extensions["gateway"].cache.refresh()
    client = app.test_client()
    big = [{**CHALLENGE_EXAMPLE, "id": i} for i in range(rows)]
    with app.extensions["gateway"].work_slots.held():  # another process's big batch
        assert client.post("/predict", json=big).status_code == 200  # never refused
    assert client.post("/predict", json=big).status_code == 200
    assert threads_used == [1, 2]  # its own core while the slot was taken, then every core
