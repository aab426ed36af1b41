"""GET /monitor reports what the monitor found last (drift, live scores from realised
prices); POST /monitor (token) runs a drift check."""

from typing import Any

from flask import Blueprint, url_for

from services.gateway.routes.requests import require_token
from services.gateway.state import gateway
from shared.monitor_state import latest_drift_report, live_scores, stream_status
from shared.queues import REQUESTED_MONITOR_KEY, job_view, request_monitor

blueprint = Blueprint("monitor", __name__)


def _requested_check() -> dict[str, Any] | None:
    """The drift check last asked for by POST /monitor: its job and state."""
    redis = gateway().redis
    raw = redis.get(REQUESTED_MONITOR_KEY.format(task="drift"))
    if raw is None:
        return None
    job_id = raw.decode() if isinstance(raw, bytes) else str(raw)
    view = job_view(redis, job_id)
    return {"job_id": job_id, "state": view.status, "error": view.error or None}


@blueprint.get("/monitor")
def monitor() -> tuple[dict[str, Any], int]:
    state = gateway()
    settings, redis = state.settings, state.redis
    return {
        "drift": latest_drift_report(redis),
        "requested_check": _requested_check(),
        "feedback": live_scores(redis),
        "streams": {
            "predictions": stream_status(
                redis, settings.prediction_log_stream, settings.prediction_log_max_listings
            ),
            "feedback": stream_status(
                redis, settings.feedback_stream, settings.feedback_max_prices
            ),
        },
    }, 200


@blueprint.post("/monitor")
def check_now() -> tuple[dict[str, Any], int, dict[str, str]]:
    state = gateway()
    require_token(state.settings, "POST /monitor")
    job = request_monitor(state.redis, state.settings, "drift")
    status_url = url_for("monitor.monitor")
    return {"job_id": job.id, "status_url": status_url}, 202, {"Location": status_url}
