"""The drift check: the logged requests of a window against the champion's training data.

It compares (shared.drift) the listings stored in Parquet (the monitor's job drains the log
first), and leaves its report in three places: an MLflow run tagged with the
champion's version (metrics, the report, a plot), Redis (GET /monitor and the gauges on
/metrics read it), and the job's result. With the opt-in on, drift queues one retrain per
interval, reason "drift".
"""

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pyarrow.compute as pc
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from pydantic import ValidationError

from services.workers.context import StageContext
from shared.drift import DriftParams, compare, reference_profile
from shared.errors import DataError
from shared.launch import LAUNCH_LOCK, launch_run
from shared.ledger import drift_reference_entry
from shared.monitor_state import (
    DRIFT_RETRAIN_KEY,
    claim_drift_retrain,
    last_drift_retrain,
    release_drift_retrain,
    save_drift_report,
)
from shared.pipeline import RunInputs
from shared.plots import drift_figure
from shared.prediction_store import LISTING_COLUMNS, days_between, read_predictions
from shared.stage_records import Prepared
from shared.tracking import DRIFT_REFERENCE_ARTIFACT

log = logging.getLogger(__name__)

DRIFT_FIGURE = "drift/summary.png"
DRIFT_REPORT = "drift/report.json"


# What a check reads of each logged listing: the fields it compares, who answered and what.
WINDOW_COLUMNS = [
    *(name for name in LISTING_COLUMNS if name != "id"),
    "entry_id",  # one stream entry per request
    "model_version",
    "price_category",
]


def window_of(
    context: StageContext, params: DriftParams, now: datetime
) -> tuple[pd.DataFrame, int]:
    """The listings logged in the last window_hours (the columns a check compares), and the
    requests they came in."""
    start = now - timedelta(hours=params.window_hours)
    folder = context.settings.resolve(context.settings.monitor_dir)
    # Filtered as read, and only the columns compared: a day's partition may hold far more
    # than the window, and the ids alone would double what the frame holds.
    table = read_predictions(folder, days_between(start, now), since=start, columns=WINDOW_COLUMNS)
    requests = pc.count_distinct(table["entry_id"]).as_py()
    return table.drop_columns(["entry_id"]).to_pandas(), requests


def drift_reference(context: StageContext, champion: ModelVersion) -> dict[str, Any] | None:
    """The drift reference explain recorded for the champion. A version trained before
    references were recorded (or whose explain is still running) gets one built from its run's
    cleaned data, logged and recorded, once; None when that data is gone too."""
    if champion.run_id is None:
        return None
    entry = context.ledger.entry(drift_reference_entry(champion.run_id))
    if entry is not None:
        return dict(entry["reference"])
    run = context.runs.get(champion.tags.get("pipeline_run_id", ""))
    try:
        dataset = context.dataset_file(RunInputs.of_run(run).get(Prepared)) if run else None
    except (ValidationError, DataError, MlflowException, OSError):  # older layout, or gone
        dataset = None
    if dataset is None:
        return None
    split = context.params.split.read(dataset)
    reference = reference_profile(split.x_train, split.y_train)
    context.tracker.log_dict(champion.run_id, reference, DRIFT_REFERENCE_ARTIFACT)
    context.ledger.record(drift_reference_entry(champion.run_id), {"reference": reference})
    log.info("drift reference of version %s built from %s", champion.version, dataset.name)
    return reference


def _log_report(context: StageContext, report: dict[str, Any]) -> str:
    """The report as an MLflow run: a metric per number, the document and its plot."""
    tracker = context.tracker
    run_id = tracker.create_run(
        "drift-check",
        f"drift-check-{report['checked_at'][:16]}",
        {"champion_version": report["champion_version"], "drifted": str(report["drifted"])},
    )
    metrics = {
        f"psi_{name}": found["psi"]
        for name, found in report["features"].items()
        if found["psi"] is not None
    }
    if report["category_mix"]["psi"] is not None:
        metrics["category_mix_psi"] = report["category_mix"]["psi"]
    metrics |= {
        "unseen_share": report["unseen_share"],
        "listings": report["listings"],
        "requests": report["requests"],
        "drifted": float(report["drifted"]),
    }
    tracker.log_values(run_id, {"window_hours": report["window_hours"]}, metrics)
    tracker.log_dict(run_id, report, DRIFT_REPORT)
    tracker.log_figure(run_id, drift_figure(report), DRIFT_FIGURE)
    tracker.end_run(run_id)
    return run_id


def queue_drift_retrain(context: StageContext, params: DriftParams, check_run: str) -> dict:
    """Queue a retrain for drift unless one was queued within the interval or a run is active;
    what happened, in words."""
    redis, settings = context.redis, context.settings
    every = int(params.retrain_every_hours * 3600)
    # The gateway's own launch lock: a drift retrain and a POST /retrain never both start.
    with redis.lock(LAUNCH_LOCK, timeout=10, blocking_timeout=12):
        active = context.runs.active()
        if active:
            return {"run_id": None, "why": f"run {active['run_id']} is {active['state']}"}
        if not claim_drift_retrain(redis, "queuing", every):
            earlier = last_drift_retrain(redis)
            return {
                "run_id": None,
                "why": f"drift queued run {earlier} less than {params.retrain_every_hours:g} h ago",
            }
        meta = {"reason": "drift", "requested_via": "monitor", "drift_check_run": check_run}
        try:
            run_id = launch_run(redis, settings, str(settings.default_data_path), meta)
        except Exception:
            release_drift_retrain(redis)  # nothing was queued: the next check may try again
            raise
        redis.set(DRIFT_RETRAIN_KEY, run_id, xx=True, keepttl=True)
    log.info("drift: queued retrain %s", run_id)
    return {"run_id": run_id, "why": "drift"}


def run_drift_check(context: StageContext) -> dict[str, Any]:
    """Check the window against the champion's training data; the report."""
    params = context.monitor_params.drift
    now = datetime.now(UTC)
    report: dict[str, Any] = {
        "checked_at": now.isoformat(timespec="seconds"),
        "window_hours": params.window_hours,
        "champion_version": None,
        "drifted": False,
    }
    champion = context.registry.champion()
    reference = drift_reference(context, champion) if champion is not None else None
    window, requests = window_of(context, params, now)
    report |= {"listings": len(window), "requests": requests}
    if champion is None or reference is None:
        report["status"] = "no_champion" if champion is None else "no_reference"
    elif len(window) < params.min_listings:
        report |= {"status": "too_few_listings", "champion_version": champion.version}
    else:
        predicted = window.loc[window["model_version"] == champion.version, "price_category"]
        report |= {"status": "checked", "champion_version": champion.version}
        report |= compare(reference, window, predicted, params.thresholds)
        report["mlflow_run_id"] = _log_report(context, report)
        if report["drifted"] and params.retrain:
            report["retrain"] = queue_drift_retrain(context, params, report["mlflow_run_id"])
    save_drift_report(context.redis, report)
    return report
