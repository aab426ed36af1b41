"""Registering a run's winner once and gating it against the champion, as one critical
section per registered model (a Redis lock, fenced before the alias moves)."""

import logging
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlflow.entities.model_registry import ModelVersion
from redis.lock import Lock

from services.workers.context import StageContext
from shared.challenger import near_miss, replaceable_by_a_run, set_challenger
from shared.locks import fence, promotion_lock
from shared.model_files import UntrustedModelError
from shared.modeling import probabilities, score_predictions
from shared.pipeline import stage_named
from shared.provenance import model_fingerprint, provenance_tags
from shared.schema import PRICE_CATEGORIES
from shared.selection import (
    ChampionScores,
    Comparison,
    FinishedCandidate,
    GateDecision,
    decide_promotion,
)
from shared.splitting import Split, SplitRule
from shared.stage_records import Prepared

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Candidate:
    """The version being gated and its metrics on the run's whole test split."""

    version: str
    metrics: Mapping[str, float]


# How many promoted versions, newest first, the gate tries before it compares with none.
MAX_VERSIONS_TRIED = 5


class _UncomparableError(Exception):
    """Why a promoted version cannot be compared with the candidate."""


def _load(context: StageContext, version: str) -> Any:
    """A version's model, or _UncomparableError when this code cannot or will not load it (its model
    needs code that has since changed, or is not skops with trusted types: it would run code)."""
    try:
        return context.registry.load_version(version)
    # Not MlflowException: a server away for the moment fails the attempt, which is retried,
    # rather than passing the champion over.
    except (ImportError, AttributeError, UntrustedModelError) as error:
        raise _UncomparableError(f"cannot be loaded by this code ({error})") from error


def _compare(
    context: StageContext, split: Split, promoted: ModelVersion, candidate: Candidate
) -> Comparison:
    """Candidate and promoted version on the run's test listings the version never trained on
    (under the rule its own training split followed)."""
    rule, rules = SplitRule.from_tags(promoted.tags), context.params.select.gate()
    if rule is None:
        raise _UncomparableError(
            "trained before listings were split by id: its training listings are unknown"
        )
    unseen = rule.is_test(split.x_test["id"])
    x, y = split.x_test[unseen], split.y_test[unseen]
    missing = [label for label in PRICE_CATEGORIES if label not in set(y)]
    if len(x) < rules.min_compared_rows or missing:
        raise _UncomparableError(
            f"only {len(x)} test listings it never trained on (select.min_compared_rows "
            f"{rules.min_compared_rows}{', none ' + ', '.join(missing) if missing else ''})"
        )
    scores = score_predictions(y, probabilities(_load(context, str(promoted.version)), x))
    if not math.isfinite(scores[rules.metric]):
        raise _UncomparableError(f"scores {scores[rules.metric]} on them")
    candidate_scores = candidate.metrics
    if not unseen.all():  # the candidate was scored on every test listing: score it on these
        model = _load(context, candidate.version)
        candidate_scores = score_predictions(y, probabilities(model, x))
    return Comparison(
        str(promoted.version),
        len(x),
        candidate_scores[rules.metric],
        scores[rules.metric],
        candidate_metrics=candidate_scores,
        metrics=scores,
    )


def _champion_scores(
    context: StageContext, dataset: Path, champion: ModelVersion, candidate: Candidate
) -> ChampionScores:
    """The champion's score at its promotion, and a comparison on this run's test listings with
    the champion or, when it cannot be compared, the last promoted version that can."""
    metric = context.params.select.metric
    recorded = champion.tags.get("score")
    at_promotion = float(recorded) if recorded and champion.tags.get("metric") == metric else None
    split = context.params.split.read(dataset)
    earlier = [v for v in context.registry.promoted_versions() if v.version != champion.version]
    skipped: list[str] = []
    for promoted in [champion, *earlier][:MAX_VERSIONS_TRIED]:
        try:
            comparison = _compare(context, split, promoted, candidate)
        except _UncomparableError as why:
            log.warning("v%s cannot be compared: %s", promoted.version, why)
            skipped.append(f"v{promoted.version} {why}")
            continue
        note = "; ".join(skipped)
        return ChampionScores(str(champion.version), at_promotion, replace(comparison, note=note))
    return ChampionScores(str(champion.version), at_promotion, None, "; ".join(skipped))


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


def _comparison_fields(scores: ChampionScores | None) -> dict[str, Any]:
    """What the run status and the version's tags say of the comparison with the champion."""
    compared = scores.comparison if scores else None
    with_champion = (
        compared is not None and scores is not None and compared.version == scores.version
    )
    return {
        "champion_version": scores.version if scores else None,
        "champion_score": compared.score if with_champion and compared else None,
        "champion_score_at_promotion": scores.score_at_promotion if scores else None,
        "compared_version": compared.version if compared else None,
        "compared_rows": compared.rows if compared else None,
        "compared_candidate_score": compared.candidate_score if compared else None,
        "compared_score": compared.score if compared else None,
    }


def _reason(decision: GateDecision, scores: ChampionScores | None) -> str:
    """The decision's reason, saying so when the champion itself was not compared."""
    if scores is None:
        return decision.reason
    compared = scores.comparison
    if compared is None:
        return f"{decision.reason}; compared with no earlier version: {scores.uncompared}"
    if compared.note:
        return (
            f"{decision.reason}; compared with v{compared.version}, the last promoted version "
            f"that could be: {compared.note}"
        )
    return decision.reason


def _gate(
    context: StageContext,
    dataset: Path,
    version: ModelVersion,
    metrics: Mapping[str, float],
    champion: ModelVersion | None,
    lock: Lock,
) -> dict[str, Any]:
    """Move the alias if the version passes the gate against the champion read under the lock;
    record the decision and why."""
    registry, rules = context.registry, context.params.select.gate()
    score, scores = float(metrics[rules.metric]), None
    if champion is not None:
        candidate = Candidate(str(version.version), metrics)
        scores = _champion_scores(context, dataset, champion, candidate)
    decision = decide_promotion(score, rules, scores)
    reason, compared = _reason(decision, scores), _comparison_fields(scores)
    outcome, pin = decision.decision, registry.pin() if decision.promoted else None
    if pin is not None:  # a person holds the champion: say what the gate would have done
        outcome = "pinned"
        reason = f"would promote ({reason}), but the champion is pinned: {_pinned(pin)}"
    elif decision.promoted:
        fence(lock)  # still ours, so nobody moved the alias since we read the champion
        registry.promote(str(version.version))
    # Tagged after the alias moves: a select killed in between decides again, and the same way.
    registry.tag_version(
        str(version.version),
        {
            "metric": rules.metric,
            "score": str(score),
            **{key: "" if value is None else str(value) for key, value in compared.items()},
            "decision": outcome,
            "reason": reason,
            "decided_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    )
    log.info("v%s: %s (%s)", version.version, outcome, reason)
    challenger = _near_miss_as_challenger(context, version, decision, scores)
    return {
        "version": str(version.version),
        "promoted": outcome == "promoted",
        "decision": outcome,
        "reason": reason,
        "challenger": challenger,
        "failed_conditions": sorted(decision.failed),
        "conditions": [asdict(check) for check in decision.checks],
        **compared,
    }


def _near_miss_as_challenger(
    context: StageContext,
    version: ModelVersion,
    decision: GateDecision,
    scores: ChampionScores | None,
) -> bool:
    """Set a version the gate refused by a small margin as the challenger (not over one set by
    hand); whether it was."""
    select = context.params.select
    compared = scores.comparison if scores is not None else None
    short = near_miss(decision, compared, select.champion_tolerance, select.challenger_margin)
    registry = context.registry
    if short is None or compared is None:
        return False
    current = registry.challenger()
    if not replaceable_by_a_run(registry.history(), str(current.version) if current else None):
        log.info("v%s: a near miss, but the challenger was set by hand", version.version)
        return False
    reason = (
        f"{select.metric} {short:.4f} short of v{compared.version} beyond the tolerance, within "
        f"select.challenger_margin {select.challenger_margin}: tried on live traffic"
    )
    by = {"run_id": version.tags.get("pipeline_run_id", "")}
    set_challenger(registry, context.redis, context.settings, str(version.version), reason, by)
    return True


def _pinned(pin: Mapping[str, Any]) -> str:
    why = f" ({pin['reason']})" if pin.get("reason") else ""
    return f'since {pin.get("at")}{why}; POST /model/pin {{"pin": false}} lifts it'


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
            tags = (
                provenance_tags()
                | context.params.split.rule().tags()
                | {
                    "pipeline_run_id": run_id,
                    "data_hash": prepared.data_hash,
                    "candidate": winner,
                    "fingerprint": fingerprint,
                }
            )
            version = registry.register(str(chosen.model_uri), tags)
        return _gate(
            context, context.dataset_file(prepared), version, chosen.metrics, champion, lock
        )
