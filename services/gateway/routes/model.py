"""GET /model (the champion and why it decides) and the health checks."""

import urllib.request
from typing import Any

from flask import Blueprint
from redis.exceptions import RedisError

from services.gateway.state import gateway

blueprint = Blueprint("model", __name__)


@blueprint.get("/model")
def model_info() -> tuple[dict[str, Any], int]:
    state = gateway()
    model = state.champion()
    if model.info.get("importances") is None and model.info.get("run_id"):
        # Explain finishes after promotion: look until found, then keep it with the model.
        found = state.source.importances(model.info["run_id"])
        if found is not None:
            model.info["importances"] = found.get("mean_abs_shap", found)
    return {**model.info, "version": model.version, "loaded_at": model.loaded_at}, 200


@blueprint.get("/health/live")
def live() -> tuple[dict[str, str], int]:
    return {"status": "ok"}, 200


def _mlflow_reachable(uri: str) -> bool:
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=2) as reply:
            return bool(reply.status == 200)
    except (OSError, ValueError):
        return False


@blueprint.get("/health/ready")
def ready() -> tuple[dict[str, Any], int]:
    state = gateway()
    try:
        redis_ok = bool(state.redis.ping())
    except RedisError:
        redis_ok = False
    checks = {
        "redis": redis_ok,
        "mlflow": _mlflow_reachable(state.settings.mlflow_tracking_uri),
        "champion": state.cache.current is not None,
    }
    failing = [name for name, ok in checks.items() if not ok]
    model = state.cache.current
    body = {
        "status": "ready" if not failing else "unavailable",
        "checks": checks,
        "failing": failing,
        "model_version": model.version if model else None,
        # Why the alias's version is not the one served (MLflow away, or a model refused as
        # untrusted); None once it is served.
        "champion_error": state.cache.last_error,
    }
    return body, 200 if not failing else 503
