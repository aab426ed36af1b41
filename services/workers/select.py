"""Select step: log and register the run's best candidate, move the champion alias if it is as
good."""

import logging
from datetime import UTC, datetime
from typing import Any

from mlflow.entities.model_registry import ModelVersion
from skops.io.exceptions import UntrustedTypesFoundException

from services.workers.context import StageContext, job_context, run_tracked
from services.workers.train import load_split
from shared.errors import PipelineError
from shared.modeling import probabilities, score_predictions
from shared.provenance import provenance_tags
from shared.queues import enqueue_explain, publish_promotion
from shared.selection import candidate_report, pick_winner, report_markdown, should_promote
from shared.storage import read_staged_model, staged_model_path
from shared.tracking import MODEL_URI_TAG, Tracker

log = logging.getLogger(__name__)


class TrainingFailedError(PipelineError):
    """A candidate failed for good, so the run has nothing complete to select from."""


def finished_candidates(
    context: StageContext, run_id: str, names: list[str]
) -> dict[str, dict[str, Any]]:
    """name -> {run_id, metrics, model_uri (None until logged)} for every candidate, in grid
    order."""
    runs: dict[str, Any] = {}
    # Newest first (MLflow's default order): a candidate fitted again supersedes its earlier run.
    for run in context.tracker.find_runs(
        run_id, "candidate", " and attributes.status = 'FINISHED'"
    ):
        runs.setdefault(run.data.tags["name"], run)
    missing = [name for name in names if name not in runs]
    if missing:
        raise TrainingFailedError(f"no finished training run for: {', '.join(missing)}")
    return {
        name: {
            "run_id": runs[name].info.run_id,
            "model_uri": runs[name].data.tags.get(MODEL_URI_TAG),
            "metrics": dict(runs[name].data.metrics),
        }
        for name in names
    }


def logged_model(context: StageContext, run_id: str, name: str, candidate: dict[str, Any]) -> str:
    """The candidate's model URI: its staged model logged to its run, unless an earlier try
    did so already."""
    if candidate["model_uri"]:
        return str(candidate["model_uri"])
    model = read_staged_model(staged_model_path(context.staging_dir, run_id, name))
    return context.tracker.log_model(candidate["run_id"], model)


def _champion_score(
    context: StageContext, inputs: dict[str, Any], metric: str
) -> tuple[str | None, float | None]:
    """The current champion's version and its score on this run's test split.

    A champion this code can no longer load or run (its model needs code that has since
    changed) cannot be compared: it scores None, and the new version takes its place.
    """
    champion = context.tracker.champion()
    if champion is None:
        return None, None
    split = load_split(context.params, inputs["processed_path"])
    try:
        model = context.tracker.load_model(f"models:/{champion.name}/{champion.version}")
        proba = probabilities(model, split.x_test)
    except (ImportError, AttributeError, UntrustedTypesFoundException) as error:
        log.warning("champion v%s cannot run with this code: %s", champion.version, error)
        return str(champion.version), None
    return str(champion.version), score_predictions(split.y_test, proba)[metric]


def _register_once(
    tracker: Tracker, run_id: str, inputs: dict[str, Any], winner: str, model_uri: str
) -> ModelVersion:
    """The run's registered version: created on the first select, found on a repeated one."""
    version = tracker.version_of_run(run_id)
    if version is not None:
        return version
    provenance = provenance_tags() | {
        "pipeline_run_id": run_id,
        "data_hash": inputs["data_hash"],
        "candidate": winner,
    }
    return tracker.register(model_uri, provenance)


def _gate(
    context: StageContext, inputs: dict[str, Any], version: str, score: float, metric: str
) -> dict[str, Any]:
    """Move the alias if the version scores at least as well as the champion; record why."""
    champion_version, champion_score = _champion_score(context, inputs, metric)
    promoted = should_promote(score, champion_score)
    if promoted:
        context.tracker.promote(version)
    # Tagged after the alias moves: a select killed in between decides again, and the same way.
    context.tracker.tag_version(
        version,
        {
            "metric": metric,
            "score": str(score),
            "champion_version": champion_version or "",
            "champion_score": str(champion_score),
            "decision": "promoted" if promoted else "kept_champion",
            "decided_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    )
    log.info(
        "v%s scores %.4f vs champion %s; promoted=%s", version, score, champion_score, promoted
    )
    return {
        "promoted": promoted,
        "champion_version": champion_version,
        "champion_score": champion_score,
    }


def run_select(context: StageContext, run_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """Pick the winner, register it once, gate it against the champion, record the decision."""
    tracker, metric = context.tracker, context.params.select.metric
    candidates = finished_candidates(context, run_id, inputs["candidates"])
    scores = {name: candidate["metrics"] for name, candidate in candidates.items()}
    winner = pick_winner(scores, metric)
    chosen = candidates[winner]
    chosen["model_uri"] = logged_model(context, run_id, winner, chosen)
    report = candidate_report(scores, winner)
    tracker.log_dict(inputs["parent_run_id"], {"candidates": report}, "report/candidates.json")
    tracker.log_text(inputs["parent_run_id"], report_markdown(report), "report/candidates.md")
    version = _register_once(tracker, run_id, inputs, winner, chosen["model_uri"])
    outputs = {
        "report": report,
        "winner": winner,
        "winner_run_id": chosen["run_id"],
        "model_uri": chosen["model_uri"],
        "version": str(version.version),
        "metric": metric,
        "score": chosen["metrics"][metric],
        "candidates": scores,
    }
    if "decision" in version.tags:  # a repeated select keeps the decision already taken
        return outputs | {
            "promoted": version.tags["decision"] == "promoted",
            "champion_version": version.tags.get("champion_version") or None,
        }
    return outputs | _gate(context, inputs, outputs["version"], outputs["score"], metric)


def select_job(run_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """RQ entry: runs once every train job ended; a failed candidate fails the run."""
    context = job_context()
    outputs = run_tracked(
        context, run_id, "stage:select", lambda: run_select(context, run_id, inputs)
    )
    if outputs["promoted"]:
        publish_promotion(context.redis, context.settings, outputs["version"])
    enqueue_explain(
        context.redis,
        context.settings,
        run_id,
        inputs
        | {
            "version": outputs["version"],
            "winner_run_id": outputs["winner_run_id"],
            "model_uri": outputs["model_uri"],
        },
    )
    return outputs
