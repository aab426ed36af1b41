"""Select step: log and register the run's best candidate, move the champion alias if it is as
good."""

import logging
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from mlflow.entities.model_registry import ModelVersion
from redis.lock import Lock
from skops.io.exceptions import UntrustedTypesFoundException

from services.workers.context import StageContext, job_context, run_tracked
from services.workers.train import load_split
from shared.errors import PipelineError
from shared.locks import fence, promotion_lock
from shared.modeling import probabilities, score_predictions
from shared.provenance import model_fingerprint, provenance_tags
from shared.queues import enqueue_explain, publish_promotion
from shared.selection import (
    ChampionScores,
    candidate_report,
    decide_promotion,
    pick_winner,
    report_markdown,
)
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


def _champion_scores(
    context: StageContext, inputs: dict[str, Any], champion: ModelVersion, metric: str
) -> ChampionScores:
    """The champion's score on this run's test split, and the one it had at its promotion.

    A champion this code can no longer load or run (its model needs code that has since
    changed) cannot be compared now: it scores None there, and only its recorded score counts.
    """
    recorded = champion.tags.get("score")
    at_promotion = float(recorded) if recorded and champion.tags.get("metric") == metric else None
    split = load_split(context.params, inputs["processed_path"])
    try:
        model = context.tracker.load_model(f"models:/{champion.name}/{champion.version}")
        proba = probabilities(model, split.x_test)
    except (ImportError, AttributeError, UntrustedTypesFoundException) as error:
        log.warning("champion v%s cannot run with this code: %s", champion.version, error)
        return ChampionScores(str(champion.version), None, at_promotion)
    now = score_predictions(split.y_test, proba)[metric]
    return ChampionScores(str(champion.version), now, at_promotion)


def _fingerprint(context: StageContext, inputs: dict[str, Any], winner: str) -> str:
    """The winner's data, code, parameters and libraries, as one hash."""
    params = context.params
    spec = asdict(params.train.candidate(winner))
    training = {"candidate": spec, "split": params.split.model_dump()}
    return model_fingerprint(inputs["data_hash"], training)


def _repeated_decision(version: ModelVersion) -> dict[str, Any]:
    """The decision an earlier try of this select took: it stands."""
    tags = version.tags
    return {
        "version": str(version.version),
        "promoted": tags["decision"] == "promoted",
        "decision": tags["decision"],
        "reason": tags.get("reason", ""),
        "champion_version": tags.get("champion_version") or None,
    }


def _gate(
    context: StageContext,
    inputs: dict[str, Any],
    version: ModelVersion,
    score: float,
    lock: Lock,
) -> dict[str, Any]:
    """Move the alias if the version passes the gate; record the decision and why."""
    tracker, rules = context.tracker, context.params.select.gate()
    champion = tracker.champion()
    scores = None if champion is None else _champion_scores(context, inputs, champion, rules.metric)
    decision = decide_promotion(score, rules, scores)
    if decision.promoted:
        fence(lock)  # still ours, so nobody moved the alias since we read the champion
        tracker.promote(str(version.version))
    # Tagged after the alias moves: a select killed in between decides again, and the same way.
    tracker.tag_version(
        str(version.version),
        {
            "metric": rules.metric,
            "score": str(score),
            "champion_version": scores.version if scores else "",
            "champion_score": str(scores.score_now if scores else None),
            "decision": decision.decision,
            "reason": decision.reason,
            "decided_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    )
    log.info("v%s: %s (%s)", version.version, decision.decision, decision.reason)
    return {
        "version": str(version.version),
        "promoted": decision.promoted,
        "decision": decision.decision,
        "reason": decision.reason,
        "failed_conditions": sorted(decision.failed),
        "champion_version": scores.version if scores else None,
        "champion_score": scores.score_now if scores else None,
        "champion_score_at_promotion": scores.score_at_promotion if scores else None,
    }


def _register_and_gate(
    context: StageContext,
    run_id: str,
    inputs: dict[str, Any],
    winner: str,
    chosen: dict[str, Any],
) -> dict[str, Any]:
    """Register the winner once and gate it, as one critical section per registered model:
    whatever selects overlap, each decides against the champion as it is when it decides."""
    tracker = context.tracker
    wait = context.settings.select_timeout
    with promotion_lock(context.redis, context.settings.model_name, wait) as lock:
        version = tracker.version_of_run(run_id)
        if version is not None and "decision" in version.tags:
            return _repeated_decision(version)
        fingerprint = _fingerprint(context, inputs, winner)
        champion = tracker.champion()
        if (
            version is None
            and champion is not None
            and champion.tags.get("fingerprint") == fingerprint
        ):
            return {
                "version": None,
                "promoted": False,
                "decision": "unchanged",
                "reason": f"identical to champion v{champion.version}: same data, code, "
                "parameters and libraries; no version registered",
                "champion_version": str(champion.version),
            }
        if version is None:
            tags = provenance_tags() | {
                "pipeline_run_id": run_id,
                "data_hash": inputs["data_hash"],
                "candidate": winner,
                "fingerprint": fingerprint,
            }
            version = tracker.register(chosen["model_uri"], tags)
        score = chosen["metrics"][context.params.select.metric]
        return _gate(context, inputs, version, score, lock)


# What select decides when asked not to register (experimentation mode, by default).
NOT_REGISTERED = {
    "version": None,
    "promoted": False,
    "decision": "not_registered",
    "reason": "experimentation mode registers and promotes only when asked (PROMOTE_EXPERIMENT=1)",
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
    return outputs | _register_and_gate(context, run_id, inputs, winner, chosen)


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
