"""A challenger on live traffic: POST, GET and DELETE /model/challenger, and
POST /model/challenger/promote.

The challenger is the registry's `challenger` alias: every gateway process loads the version
it points at beside the champion and scores a share of the requests with it too, after the
champion's answer is sent (services.gateway.shadow). How the two agree is tallied in Redis;
how they do against realised prices, the monitor works out (services.workers.challenger_trial).
Promoting it decides with the gate's own conditions, on those realised prices when there are
enough of them, inside the same lock as a run's select.
"""

from typing import Any

from flask import Blueprint

from services.gateway.champion import LoadedModel
from services.gateway.errors import ApiError
from services.gateway.routes.lifecycle import (
    asked_by,
    champion_version,
    check_servable,
    guarded,
    promotion_lock_or_409,
    registry_or_503,
    version_error,
)
from services.gateway.shadow import read_tally
from services.gateway.state import Gateway, gateway
from shared.challenger import set_challenger
from shared.contracts import ChallengerRequest, ReasonRequest
from shared.lifecycle import Event, now
from shared.locks import fence
from shared.monitor_state import challenger_trial
from shared.params import load_params
from shared.queues import publish_promotion
from shared.registry import Registry
from shared.selection import ChampionScores, Comparison, GateRules, decide_promotion

blueprint = Blueprint("challenger", __name__)


@blueprint.post("/model/challenger")
def try_challenger() -> tuple[dict[str, Any], int]:
    state, body, registry = guarded("POST /model/challenger", ChallengerRequest, required=True)
    with promotion_lock_or_409(state):
        champion = champion_version(registry)
        if body.version == champion:
            raise version_error(409, "already_champion", f"v{body.version} is the champion")
        current = _challenger_version(registry)
        if body.version == current:
            raise version_error(
                409,
                "already_challenger",
                f"v{body.version} is the challenger already (DELETE /model/challenger first "
                "to start its tallies again)",
            )
        check_servable(registry, body.version)
        event = set_challenger(
            registry, state.redis, state.settings, body.version, body.reason or "", asked_by()
        )
    return {
        **event.as_json(),
        "champion_version": champion,
        "share": state.settings.challenger_share,
    }, 200


@blueprint.delete("/model/challenger")
def remove_challenger() -> tuple[dict[str, Any], int]:
    state, body, registry = guarded("DELETE /model/challenger", ReasonRequest, required=False)
    with promotion_lock_or_409(state):
        version = _required_challenger(registry)
        registry.set_challenger(None)
        event = Event(now(), "challenger_removed", version, None, body.reason or "", asked_by())
        registry.record(event)
    publish_promotion(state.redis, state.settings, version)
    return event.as_json(), 200


@blueprint.get("/model/challenger")
def show_challenger() -> tuple[dict[str, Any], int]:
    state = gateway()
    registry = registry_or_503(state)
    version = _required_challenger(registry)
    loaded = state.challenger.current if state.challenger is not None else None
    return {
        "version": version,
        "champion_version": champion_version(registry),
        "share": state.settings.challenger_share,
        "loaded_here": loaded is not None and loaded.version == version,
        "shadow": read_tally(state.redis, state.settings.challenger_tally_prefix, version),
        # Each version's own measure, taken by its training run: one listing, one thread.
        "single_row_ms": {
            "champion": _single_row_ms(state.cache.current),
            "challenger": _single_row_ms(loaded) if loaded and loaded.version == version else None,
        },
        "live": _trial(state, version),
    }, 200


@blueprint.post("/model/challenger/promote")
def promote_challenger() -> tuple[dict[str, Any], int]:
    state, body, registry = guarded("POST /model/challenger/promote", ReasonRequest, required=False)
    rules = load_params(state.settings.pipeline_config).select.gate()
    with promotion_lock_or_409(state) as lock:
        version = _required_challenger(registry)
        champion = champion_version(registry)
        check_servable(registry, version)
        score, scores = _gate_inputs(state, registry, rules, version, champion)
        decision = decide_promotion(score, rules, scores)
        verdict: dict[str, Any] = {
            "version": version,
            "champion_version": champion,
            "metric": rules.metric,
            "score": score,
            "compared_on": "realised prices" if scores.comparison else "the version's test split",
            "reason": decision.reason if scores.comparison else _uncompared(decision, scores),
            "failed_conditions": sorted(decision.failed),
        }
        if (pin := registry.pin()) is not None:
            raise ApiError(
                409,
                "pinned",
                f"the champion is pinned since {pin.get('at')}: lift the pin to promote "
                f"(the gate {'would promote' if decision.promoted else 'refuses'})",
                decision=verdict,
            )
        if not decision.promoted:
            raise ApiError(409, "gate_refused", verdict["reason"], decision=verdict)
        fence(lock)  # still ours: nobody moved the alias since the champion was read
        registry.promote(version)
        registry.set_challenger(None)
        event = Event(
            now(),
            "promoted",
            version,
            champion,
            f"challenger promoted: {verdict['reason']}"
            + (f" ({body.reason})" if body.reason else ""),
            asked_by(),
            rules.metric,
            score,
        )
        registry.record(event)
    publish_promotion(state.redis, state.settings, version)
    return {**event.as_json(), "decision": verdict}, 200


def _single_row_ms(model: LoadedModel | None) -> float | None:
    metrics = model.info.get("metrics", {}) if model is not None else {}
    return metrics.get("predict_ms_single_row")


def _challenger_version(registry: Registry) -> str | None:
    found = registry.challenger()
    return str(found.version) if found is not None else None


def _required_challenger(registry: Registry) -> str:
    version = _challenger_version(registry)
    if version is None:
        raise ApiError(
            404,
            "no_challenger",
            "no version is being tried beside the champion",
            hint='POST /model/challenger {"version": N} tries one',
        )
    return version


def _trial(state: Gateway, version: str) -> dict[str, Any] | None:
    """The monitor's side-by-side scores on realised prices, if they are this challenger's."""
    trial = challenger_trial(state.redis)
    if trial is None or trial.get("version") != version:
        return None
    return {k: v for k, v in trial.items() if k != "basis"}


def _gate_inputs(
    state: Gateway, registry: Registry, rules: GateRules, version: str, champion: str
) -> tuple[float, ChampionScores]:
    """The score the gate judges and what it knows of the champion: the two on the same
    realised prices when there are enough (select.min_compared_rows, every category), else
    the challenger's score on its own run's test split and no comparison, as a run's gate does
    when the champion cannot be compared."""
    record = registry.version(champion)
    recorded = record.tags.get("score")
    at_promotion = (
        float(recorded) if recorded and record.tags.get("metric") == rules.metric else None
    )
    trial = _trial(state, version)
    live = _live_comparison(trial, rules, champion) if trial else None
    if live is not None:
        return live.candidate_score, ChampionScores(champion, at_promotion, live)
    tags = registry.version(version).tags
    if not tags.get("score") or tags.get("metric") != rules.metric:
        raise ApiError(
            409,
            "not_comparable",
            f"v{version} has no {rules.metric} on record and too few realised prices to "
            f"score it live ({_judged(trial)} judged; select.min_compared_rows "
            f"{rules.min_compared_rows}, every category)",
        )
    why = (
        f"{_judged(trial)} listings judged by realised prices in the monitor's window, fewer "
        f"than select.min_compared_rows {rules.min_compared_rows} or not every category"
    )
    return float(tags["score"]), ChampionScores(champion, at_promotion, None, why)


def _live_comparison(trial: dict[str, Any], rules: GateRules, champion: str) -> Comparison | None:
    mine, theirs = trial.get("challenger", {}), trial.get("champion", {})
    if (
        trial.get("champion_version") != champion
        or trial.get("judged", 0) < rules.min_compared_rows
        or rules.metric not in mine
        or rules.metric not in theirs
    ):
        return None
    return Comparison(
        champion,
        trial["judged"],
        mine[rules.metric],
        theirs[rules.metric],
        candidate_metrics=mine,
        metrics=theirs,
        listings="listings judged by realised prices",
    )


def _judged(trial: dict[str, Any] | None) -> int:
    return int(trial.get("judged", 0)) if trial else 0


def _uncompared(decision: Any, scores: ChampionScores) -> str:
    return f"{decision.reason}; not compared with the champion: {scores.uncompared}"
