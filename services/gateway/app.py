"""The gateway's app factory: nothing connects or loads at import time, only in create_app."""

from flask import Flask

from services.gateway.admission import WorkSlots, default_slots, slots_folder
from services.gateway.champion import ChampionCache, ChampionSource, LoadedModel
from services.gateway.collector import CollectorPausedPerRequest
from services.gateway.dashboard import mount_dashboard
from services.gateway.errors import register_error_handlers
from services.gateway.json_provider import FastJSONProvider
from services.gateway.logs import install_request_ids
from services.gateway.metrics import Metrics
from services.gateway.openapi import blueprint as openapi_blueprint
from services.gateway.prediction_log import PredictionLog
from services.gateway.registry import MlflowChampionSource
from services.gateway.routes.challenger import blueprint as challenger_blueprint
from services.gateway.routes.feedback import blueprint as feedback_blueprint
from services.gateway.routes.health import blueprint as health_blueprint
from services.gateway.routes.lifecycle import blueprint as lifecycle_blueprint
from services.gateway.routes.model import blueprint as model_blueprint
from services.gateway.routes.monitor import blueprint as monitor_blueprint
from services.gateway.routes.predict import blueprint as predict_blueprint
from services.gateway.routes.runs import blueprint as runs_blueprint
from services.gateway.secrets import check_secrets
from services.gateway.shadow import Shadow
from services.gateway.state import DescribedSource, Gateway
from shared.capped_stream import CappedStream
from shared.compiled_trees import proven_compiled
from shared.queues import connect
from shared.runs import RunStore
from shared.settings import Settings, get_settings


def _promoted_at(cache: ChampionCache) -> str | None:
    served = cache.current
    return served.info.get("promoted_at") if served is not None else None


def _version(cache: ChampionCache | None) -> str | None:
    served = cache.current if cache is not None else None
    return served.version if served is not None else None


def _report_challenger(challenger: ChampionCache, metrics: Metrics) -> None:
    """The challenger each process holds, as a gauge."""

    challenger.on_swap = lambda model: metrics.challenger_version.set(float(model.version))
    challenger.on_dropped = lambda: metrics.challenger_version.set(0)


def create_app(
    settings: Settings | None = None,
    source: DescribedSource | None = None,
    watch_champion: bool = True,
    challenger_source: ChampionSource | None = None,
) -> Flask:
    """Build a gateway. Tests pass their own settings and, for pure tests, a model source
    (and a challenger's: without one, a gateway on a source of its own tries no challenger).

    With watch_champion, background threads load the champion and the challenger and follow
    their aliases.
    """
    settings = settings or get_settings()
    check_secrets(settings)  # before anything listens: a weak secret is no secret
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json = FastJSONProvider(app)
    app.json.sort_keys = False  # type: ignore[attr-defined]

    redis = connect(settings.redis_url, timeout=settings.gateway_redis_timeout)
    if source is None:
        source = MlflowChampionSource(settings)
        challenger_source = MlflowChampionSource(settings, settings.challenger_alias)
    compile_trees = proven_compiled if settings.compiled_trees else None
    cache = ChampionCache(source, settings.alias_poll_seconds, compile_trees)
    challenger, shadow = None, None
    if challenger_source is not None:
        # Its trees are not compiled: it scores a share of the traffic in passes, after the
        # answers, and compiling (seconds of Python holding the interpreter's lock in every
        # process) would cost the champion's answers more than it saves. Its time as champion
        # is its training run's measure (GET /model/challenger: single_row_ms).
        challenger = ChampionCache(
            challenger_source, settings.alias_poll_seconds, drop_when_unset=True, role="challenger"
        )
        shadow = Shadow(
            redis,
            settings.challenger_tally_prefix,
            settings.challenger_share,
            lambda: challenger.current if challenger is not None else None,
        )

    metrics = Metrics(
        redis,
        promoted_at=lambda: _promoted_at(cache),
        stream_caps={
            settings.prediction_log_stream: settings.prediction_log_max_listings,
            settings.feedback_stream: settings.feedback_max_prices,
        },
        challenger_tallies=(settings.challenger_tally_prefix, lambda: _version(challenger)),
    )
    if challenger is not None:
        _report_challenger(challenger, metrics)

    def swapped(model: LoadedModel) -> None:
        metrics.model_version.set(float(model.version))
        metrics.compiled_trees.set(0)

    cache.on_swap = swapped
    cache.on_compiled = lambda model: metrics.compiled_trees.set(1)
    prediction_log = None
    if settings.prediction_log:
        prediction_log = PredictionLog(
            CappedStream(
                redis, settings.prediction_log_stream, settings.prediction_log_max_listings
            ),
            settings.prediction_log_buffer,
            on_dropped=metrics.prediction_log_dropped.inc,
        )
    state = Gateway(
        settings,
        source,
        cache,
        redis,
        RunStore(redis, settings.run_ttl_seconds),
        metrics,
        WorkSlots(slots_folder(), settings.work_slots or default_slots()),
        prediction_log,
        challenger,
        shadow,
    )
    app.extensions["gateway"] = state

    register_error_handlers(app)
    install_request_ids(app, metrics.observe)
    for blueprint in (
        predict_blueprint,
        runs_blueprint,
        model_blueprint,
        lifecycle_blueprint,
        challenger_blueprint,
        monitor_blueprint,
        feedback_blueprint,
        health_blueprint,
        openapi_blueprint,
    ):
        app.register_blueprint(blueprint)
    mount_dashboard(app, settings)
    app.wsgi_app = CollectorPausedPerRequest(app.wsgi_app)  # type: ignore[method-assign]

    if watch_champion:
        cache.start(redis, settings.promotion_channel)
        if challenger is not None and shadow is not None:
            challenger.start(redis, settings.promotion_channel)
            shadow.start()
        # A gunicorn process takes requests once it has tried to load the champion, so that
        # one process cannot answer 503 "no model" while its siblings already serve it; the
        # wait is bounded, so a gateway still starts (and says 503) while MLflow is away.
        cache.first_attempt.wait(settings.champion_startup_wait)
    return app
