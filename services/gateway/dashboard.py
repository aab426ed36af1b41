"""rq-dashboard mounted under /rq, behind HTTP basic auth with credentials from the environment,
and hardened for a browser that holds those credentials.

rq-dashboard 0.9 renders a job's description and error text as HTML, and its actions (delete,
requeue, empty, compact) take any request that carries the credentials, which the browser
sends by itself, from any page. So: a Content-Security-Policy that lets only the dashboard's
own scripts run (its one inline script gets a per-response nonce; markup that reached a job's
text cannot run), no framing, and actions only as POSTs from the dashboard's own origin.
"""

import hmac
import json
import re
import secrets
from urllib.parse import urlsplit

import rq_dashboard
from flask import Flask, Response, g, request
from rq.serializers import JSONSerializer
from rq_dashboard.web import config as dashboard_config
from rq_dashboard.web import setup_rq_connection

from shared.settings import Settings

PREFIX = "/rq"
# The dashboard's inline script (its page template's only one), marked with the nonce.
INLINE_SCRIPT = '<script type="text/javascript">'
# Its templates compile with underscore's _.template, which needs eval.
POLICY = (
    "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'unsafe-eval'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
NOTHING_RUNS = "default-src 'none'; frame-ancestors 'none'"
# rq-dashboard also requeues a whole queue on a GET: state changes only by POST here.
STATE_CHANGING_GET = re.compile(rf"^{PREFIX}/requeue/")


def _json_refusal(status: int, error: str, message: str) -> Response:
    body = json.dumps({"error": error, "message": message})
    return Response(body, status=status, mimetype="application/json")


def _same_origin() -> bool:
    """Whether a request comes from a page of this host (Origin, else Referer): browsers send
    one of them with every POST; a page elsewhere cannot forge them."""
    source = request.headers.get("Origin") or request.headers.get("Referer") or ""
    return urlsplit(source).netloc == request.host and source.startswith(("http://", "https://"))


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
    def guard_dashboard() -> Response | None:
        if not request.path.startswith(PREFIX):
            return None
        if not _authorized(settings):
            refusal = _json_refusal(401, "unauthorized", "the dashboard needs its credentials")
            refusal.headers["WWW-Authenticate"] = 'Basic realm="rq-dashboard"'
            return refusal
        if request.method == "GET" and STATE_CHANGING_GET.match(request.path):
            return _json_refusal(405, "method_not_allowed", "dashboard actions are POSTs")
        if request.method not in ("GET", "HEAD") and not _same_origin():
            return _json_refusal(403, "cross_origin", "dashboard actions come from its own pages")
        g.dashboard_nonce = secrets.token_urlsafe(16)
        return None

    @app.after_request
    def dashboard_headers(response: Response) -> Response:
        if not request.path.startswith(PREFIX):
            return response
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        nonce = g.get("dashboard_nonce")
        if nonce and response.mimetype == "text/html" and not response.direct_passthrough:
            page = response.get_data(as_text=True)
            response.set_data(page.replace(INLINE_SCRIPT, f'{INLINE_SCRIPT[:-1]} nonce="{nonce}">'))
            response.headers["Content-Security-Policy"] = POLICY.format(nonce=nonce)
        else:  # JSON, scripts, styles, refusals: nothing in them may run or load anything
            response.headers["Content-Security-Policy"] = NOTHING_RUNS
        return response
