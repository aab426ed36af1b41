"""Registering a run's winner once and gating it against the champion, as one critical
section per registered model (a Redis lock, fenced before the alias moves)."""

import logging
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlflow.entities.model_registry import ModelVersion
from redis.lock import Lock

from services.workers.context import StageContext
from shared.locks import fence, promotion_lock
from shared.model_files import UntrustedModelError
from shared.modeling import probabilities, score_predictions
from shared.pipeline import stage_named
from shared.provenance import model_fingerprint, provenance_tags
from shared.selection import ChampionScores, FinishedCandidate, decide_promotion
from shared.stage_records import Prepared

log = logging.getLogger(__name__)


def _champion_scores(
    context: StageContext, dataset: Path, champion: ModelVersion, metric: str
) -> ChampionScores:
    """The champion's score on this run's test split, and the one it had at its promotion.

    A champion this code can no longer load or run (its model needs code that has since
    changed) or will not load (not skops, or types it does not trust: it would run code) cannot
    be compared now: it scores None there, and only its recorded score counts.
    """
    recorded = champion.tags.get("score")
    at_promotion = float(recorded) if recorded and champion.tags.get("metric") == metric else None
    split = context.params.split.read(dataset)
    try:
        model = context.registry.load_version(str(champion.version))
        proba = probabilities(model, split.x_test)
    except (ImportError, AttributeError, UntrustedModelError) as error:
        log.warning("champion v%s cannot run with this code: %s", champion.version, error)
        return ChampionScores(str(champion.version), None, at_promotion)
    now = score_predictions(split.y_test, proba)[metric]
    return ChampionScores(str(champion.version), now, at_promotion)


def _fingerprint(context: StageContext, data_hash: str, winner: str) -> str:
    """The winner's data, code, parameters and libraries, as one hash."""
    params = context.params
    spec = asdict(params.train.candidate(winner))
    training = {"candidate": spec, "split": params.split.model_dump()}
    return model_fingerprint(data_hash, training)


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
    dataset: Path,
    version: ModelVersion,
    score: float,
    champion: ModelVersion | None,
    lock: Lock,
) -> dict[str, Any]:
    """Move the alias if the version passes the gate against the champion read under the lock;
    record the decision and why."""
    registry, rules = context.registry, context.params.select.gate()
    scores = None
    if champion is not None:
        scores = _champion_scores(context, dataset, champion, rules.metric)
    decision = decide_promotion(score, rules, scores)
    if decision.promoted:
        fence(lock)  # still ours, so nobody moved the alias since we read the champion
        registry.promote(str(version.version))
    # Tagged after the alias moves: a select killed in between decides again, and the same way.
    registry.tag_version(
        str(version.version),
        {
            "metric": rules.metric,
            "score": str(score),
            "champion_version": scores.version if scores else "",
            "champion_score": ""
            if scores is None or scores.score_now is None
            else str(scores.score_now),
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


def register_and_gate(
    context: StageContext,
    run_id: str,
    prepared: Prepared,
    winner: str,
    chosen: FinishedCandidate,
) -> dict[str, Any]:
    """Register the winner once and gate it, as one critical section per registered model:
    whatever selects overlap, each decides against the champion as it is when it decides."""
    registry = context.registry
    wait = stage_named("select").timeout_in(context.settings)
    with promotion_lock(context.redis, context.settings.model_name, wait) as lock:
        version = registry.version_of_run(run_id)
        if version is not None and "decision" in version.tags:
            return _repeated_decision(version)
        fingerprint = _fingerprint(context, prepared.data_hash, winner)
        champion = registry.champion()
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
                "data_hash": prepared.data_hash,
                "candidate": winner,
                "fingerprint": fingerprint,
            }
            version = registry.register(str(chosen.model_uri), tags)
        score = chosen.metrics[context.params.select.metric]
        return _gate(context, context.dataset_file(prepared), version, score, champion, lock)
