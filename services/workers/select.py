"""Select step: pick the run's best candidate, log its model, register it and move the champion
alias if it passes the gate (services.workers.promotion)."""

import logging
from typing import Any

from services.workers.context import StageContext
from services.workers.promotion import register_and_gate
from shared.pipeline import RunInputs
from shared.queues import publish_promotion
from shared.selection import candidate_report, pick_winner, report_markdown
from shared.stage_records import Prepared, Selected

log = logging.getLogger(__name__)

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


def registers(context: StageContext) -> bool:
    """A queued run registers its winner; an experiment only when asked to."""
    return not context.in_process or context.settings.promote_experiment


def run_select(context: StageContext, run: RunInputs) -> Selected:
    """Pick the winner and log its model; unless an experiment not asked to, register it once,
    gate it against the champion, record the decision and announce a promotion."""
    tracker, metric, run_id = context.tracker, context.params.select.metric, run.run_id
    prepared = run.get(Prepared)
    candidates = tracker.finished_candidates(run_id, prepared.candidates)
    scores = {name: candidate.metrics for name, candidate in candidates.items()}
    winner = pick_winner(scores, metric)
    chosen = candidates[winner]
    chosen.model_uri = tracker.ensure_model_logged(
        chosen, lambda: context.staged_model(run, winner)
    )
    report = candidate_report(scores, winner)
    tracker.log_dict(prepared.parent_run_id, {"candidates": report}, "report/candidates.json")
    tracker.log_text(prepared.parent_run_id, report_markdown(report), "report/candidates.md")
    outputs: dict[str, Any] = {
        "report": report,
        "winner": winner,
        "winner_run_id": chosen.run_id,
        "model_uri": chosen.model_uri,
        "metric": metric,
        "score": chosen.metrics[metric],
        "candidates": scores,
    }
    if not registers(context):
        return Selected(**outputs, **NOT_REGISTERED)
    decision = register_and_gate(context, run_id, prepared, winner, chosen)
    if decision["promoted"]:
        publish_promotion(context.redis, context.settings, decision["version"])
    return Selected(**outputs, **decision)
