"""The drift check on real servers: real listings like the training data's are no drift; the
same listings moved to the Bronx with 12 guests each raise the drift report, its MLflow run and
the gauges past the thresholds, and with the opt-in on, drift queues exactly one retrain
however often it is found."""

import re
import time

import pyarrow.compute as pc
import pytest
import requests
from mlflow.tracking import MlflowClient

from shared.contracts import Listing
from shared.ledger import LEDGER_KEY, Ledger, drift_reference_entry
from shared.prediction_store import read_predictions
from shared.queues import connect
from shared.registry import Registry
from shared.settings import Settings
from shared.tracking import DRIFT_REFERENCE_ARTIFACT
from tests.integration.conftest import GATEWAY_TOKEN, wait_for_run

STREAM = Settings().prediction_log_stream

AUTH = {"Authorization": f"Bearer {GATEWAY_TOKEN}"}
# A window of the last 30 s, which the test lets pass after the last listing any earlier test
# logged: the first check sees this test's listings alone.
WINDOW_SECONDS = 30
WINDOW_HOURS = WINDOW_SECONDS / 3600
LISTINGS = 300


@pytest.fixture
def drift_retrain_on(stack):
    stack.write_monitor_config({"window_hours": WINDOW_HOURS, "retrain": True})
    yield
    stack.write_monitor_config()


def _wait_out_the_window(stack) -> None:
    """Until the newest listing logged so far (by any test) has left the window: in the
    stream if not drained yet, else in Parquet."""
    newest = connect(stack.settings.redis_url).xrevrange(STREAM, count=1)
    stored = read_predictions(stack.settings.monitor_dir)["time"]
    logged_at = max(
        int(newest[0][0].decode().split("-")[0]) / 1000 if newest else 0.0,
        pc.max(stored).as_py().timestamp() if len(stored) else 0.0,
    )
    time.sleep(max(0.0, logged_at + WINDOW_SECONDS + 1 - time.time()))


def _real_listings(stack, seed: int) -> list[dict]:
    """LISTINGS requests made of listings of the shipped data (cleaned by an earlier run)."""
    sample = stack.shipped_listings().sample(LISTINGS, random_state=seed)
    fields = list(Listing.model_fields)
    return [
        Listing.model_validate({**row, "id": str(row["id"])}).model_dump()
        for row in sample[fields].to_dict("records")
    ]


def _predict(stack, gateway: str, tag: str, listings: list[dict]) -> None:
    """Predict the listings under ids of their own; back once all are in Parquet."""
    ids = [f"{tag}-{i}" for i in range(len(listings))]
    body = [{**listing, "id": id_} for listing, id_ in zip(listings, ids, strict=True)]
    for start in range(0, len(body), 100):
        reply = requests.post(f"{gateway}/predict", json=body[start : start + 100], timeout=10)
        assert reply.status_code == 200, reply.text
    deadline = time.monotonic() + 30
    while not set(ids) <= set(read_predictions(stack.settings.monitor_dir)["id"].to_pylist()):
        assert time.monotonic() < deadline, "the listings never reached Parquet"
        time.sleep(0.5)


def _check(gateway: str) -> dict:
    """POST /monitor, then the report of that check once it has run."""
    reply = requests.post(f"{gateway}/monitor", headers=AUTH, timeout=10)
    assert reply.status_code == 202, reply.text
    job_id = reply.json()["job_id"]
    deadline = time.monotonic() + 120
    while True:
        state = requests.get(f"{gateway}{reply.json()['status_url']}", timeout=10).json()
        requested = state["requested_check"]
        assert requested["job_id"] == job_id
        if requested["state"] == "finished":
            return state["drift"]
        assert requested["state"] in ("queued", "started"), requested
        assert time.monotonic() < deadline, requested
        time.sleep(0.5)


def _gauges(gateway: str) -> dict[str, float]:
    text = requests.get(f"{gateway}/metrics", timeout=10).text
    return {
        name: float(value)
        for name, value in re.findall(r"^(monitor_drift_\S+) (\S+)$", text, re.MULTILINE)
    }


def test_shifted_listings_are_drift_and_queue_exactly_one_retrain(
    stack, gateway, served_champion, drift_retrain_on
):
    _wait_out_the_window(stack)
    _predict(stack, gateway, "like-training", _real_listings(stack, seed=1))
    calm = _check(gateway)
    assert calm["status"] == "checked" and not calm["drifted"], calm["reasons"]
    assert calm["champion_version"] == served_champion
    assert calm["listings"] == LISTINGS
    assert calm["max_feature_psi"] < calm["thresholds"]["feature_psi"]
    assert "retrain" not in calm
    assert _gauges(gateway)["monitor_drift_detected"] == 0

    shifted = [
        {**listing, "neighbourhood": "Bronx", "accommodates": 12}
        for listing in _real_listings(stack, seed=2)
    ]
    _predict(stack, gateway, "bronx-a", shifted)
    report = _check(gateway)

    assert report["status"] == "checked" and report["drifted"], report
    assert report["champion_version"] == served_champion
    assert LISTINGS <= report["listings"] <= 2 * LISTINGS  # the calm ones, if still in the window
    threshold = report["thresholds"]["feature_psi"]
    assert report["features"]["accommodates"]["psi"] > threshold
    assert report["features"]["neighbourhood"]["psi"] > threshold
    assert report["features"]["latitude"]["psi"] < threshold  # unchanged, not blamed

    gauges = _gauges(gateway)
    assert gauges["monitor_drift_detected"] == 1
    assert gauges['monitor_drift_feature_psi{feature="accommodates"}'] > threshold
    assert gauges['monitor_drift_feature_psi{feature="neighbourhood"}'] > threshold
    assert gauges["monitor_drift_window_listings"] == report["listings"]

    mlflow = MlflowClient(stack.settings.mlflow_tracking_uri)
    logged = mlflow.get_run(report["mlflow_run_id"])
    assert logged.data.tags["champion_version"] == served_champion
    assert logged.data.tags["kind"] == "drift-check"
    assert logged.data.metrics["psi_accommodates"] == pytest.approx(
        report["features"]["accommodates"]["psi"]
    )
    artifacts = {a.path for a in mlflow.list_artifacts(report["mlflow_run_id"], "drift")}
    assert artifacts == {"drift/report.json", "drift/summary.png"}

    queued = report["retrain"]["run_id"]
    assert queued is not None, report["retrain"]
    run = wait_for_run(stack, queued)
    assert (run["reason"], run["requested_via"]) == ("drift", "monitor")

    # Still drifting later on: found again, and no second retrain.
    _predict(stack, gateway, "bronx-b", shifted)
    again = _check(gateway)
    assert again["drifted"] and again["retrain"]["run_id"] is None
    assert again["retrain"]["why"].startswith(f"drift queued run {queued} less than")
    drift_runs = [r for r in stack.runs().recent(200) if r.get("reason") == "drift"]
    assert [r["run_id"] for r in drift_runs] == [queued]


def test_a_champion_trained_before_drift_references_gets_one_built_from_its_data(
    stack, gateway, served_champion
):
    # As for a version registered before explain logged references: its file is gone, and so
    # is the entry explain recorded.
    version = Registry(stack.settings).version(served_champion)
    logged = list(
        (stack.folder / "mlflow").rglob(f"{version.run_id}/**/{DRIFT_REFERENCE_ARTIFACT}")
    )
    assert len(logged) == 1, logged
    logged[0].unlink()
    entry = drift_reference_entry(version.run_id)
    ledger = Ledger(connect(stack.settings.redis_url))
    assert ledger.entry(entry) is not None  # explain recorded it
    ledger.redis.delete(LEDGER_KEY.format(name=entry))
    stack.write_monitor_config({"window_hours": WINDOW_HOURS})
    try:
        _predict(stack, gateway, "upgrade", _real_listings(stack, seed=3))
        report = _check(gateway)
    finally:
        stack.write_monitor_config()
    # (The window may still hold the listings of the test before: drift or not is not the point.)
    assert report["status"] == "checked", report
    assert report["features"]["latitude"]["psi"] is not None
    assert logged[0].is_file()  # built once, logged where explain would have put it
    assert ledger.entry(entry) is not None  # and recorded, where the next check reads it
