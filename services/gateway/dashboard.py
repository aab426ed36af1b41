"""rq-dashboard mounted under /rq, behind HTTP basic auth with credentials from the environment."""

import hmac

import rq_dashboard
from flask import Flask, Response, request
from rq.serializers import JSONSerializer
from rq_dashboard.web import config as dashboard_config
from rq_dashboard.web import setup_rq_connection

from shared.settings import Settings

PREFIX = "/rq"


def _authorized(settings: Settings) -> bool:
    auth = request.authorization
    if settings.dashboard_user is None or settings.dashboard_password is None or auth is None:
        return False
    expected = (settings.dashboard_user, settings.dashboard_password.get_secret_value())
    given = (auth.username or "", auth.password or "")
    return all(
        hmac.compare_digest(a.encode(), b.encode()) for a, b in zip(given, expected, strict=True)
    )


def mount_dashboard(app: Flask, settings: Settings) -> None:
    """Serve the RQ dashboard under /rq; without credentials configured it always answers 401."""
    app.config["RQ_DASHBOARD_REDIS_URL"] = settings.redis_url
    dashboard_config.serializer = JSONSerializer  # our jobs are JSON, not pickle
    setup_rq_connection(app)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=PREFIX)

    @app.before_request
    def require_dashboard_login() -> Response | None:
        if not request.path.startswith(PREFIX) or _authorized(settings):
            return None
        return Response(
            '{"error": "unauthorized", "message": "the dashboard needs its credentials"}',
            status=401,
            mimetype="application/json",
            headers={"WWW-Authenticate": 'Basic realm="rq-dashboard"'},
        )
