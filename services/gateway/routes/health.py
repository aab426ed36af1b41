"""What operators and their tools poll: liveness, readiness and Prometheus' metrics."""

from typing import Any

from flask import Blueprint, Response
from redis.exceptions import RedisError

from services.gateway.metrics import CONTENT_TYPE
from services.gateway.state import gateway
from shared.probes import mlflow_answers

blueprint = Blueprint("health", __name__)


@blueprint.get("/health/live")
def live() -> tuple[dict[str, str], int]:
    return {"status": "ok"}, 200


@blueprint.get("/health/ready")
def ready() -> tuple[dict[str, Any], int]:
    state = gateway()
    try:
        redis_ok = bool(state.redis.ping())
    except RedisError:
        redis_ok = False
    checks = {
        "redis": redis_ok,
        "mlflow": mlflow_answers(state.settings.mlflow_tracking_uri),
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


@blueprint.get("/metrics")
def prometheus_metrics() -> Response:
    return Response(gateway().metrics.render(), mimetype=CONTENT_TYPE)
