"""Select step: pick the run's best candidate, log its model, register it and move the champion
alias if it passes the gate (services.workers.promotion)."""

import logging
from typing import Any

from services.workers.context import StageContext, job_context, run_tracked
from services.workers.promotion import register_and_gate
from shared.errors import PipelineError
from shared.queues import enqueue_explain, publish_promotion
from shared.selection import candidate_report, pick_winner, report_markdown
from shared.storage import read_staged_model, staged_model_path
from shared.tracking import MODEL_URI_TAG

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


# What select decides when asked not to register (experimentation mode, by default).
NOT_REGISTERED = {
    "version": None,
    "promoted": False,
    "decision": "not_registered",
    "reason": (
        "experimentation mode registers and promotes only when asked "
        "(PRICE_CATEGORY_PROMOTE_EXPERIMENT=1)"
    ),
}


def run_select(
    context: StageContext, run_id: str, inputs: dict[str, Any], register: bool = True
) -> dict[str, Any]:
    """Pick the winner and log its model; unless told not to register, register it once, gate
    it against the champion and record the decision."""
    tracker, metric = context.tracker, context.params.select.metric
    candidates = finished_candidates(context, run_id, inputs["candidates"])
    scores = {name: candidate["metrics"] for name, candidate in candidates.items()}
    winner = pick_winner(scores, metric)
    chosen = candidates[winner]
    chosen["model_uri"] = logged_model(context, run_id, winner, chosen)
    report = candidate_report(scores, winner)
    tracker.log_dict(inputs["parent_run_id"], {"candidates": report}, "report/candidates.json")
    tracker.log_text(inputs["parent_run_id"], report_markdown(report), "report/candidates.md")
    outputs = {
        "report": report,
        "winner": winner,
        "winner_run_id": chosen["run_id"],
        "model_uri": chosen["model_uri"],
        "metric": metric,
        "score": chosen["metrics"][metric],
        "candidates": scores,
    }
    if not register:
        return outputs | NOT_REGISTERED
    return outputs | register_and_gate(context, run_id, inputs, winner, chosen)


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
