"""What the gateway's routes share, built once by create_app and kept on the Flask app."""

from dataclasses import dataclass
from typing import Any, Protocol

from flask import current_app
from redis import Redis

from services.gateway.admission import WorkSlots
from services.gateway.champion import ChampionCache, ChampionSource, LoadedModel
from services.gateway.errors import ApiError
from services.gateway.metrics import Metrics
from services.gateway.prediction_log import PredictionLog
from services.gateway.shadow import Shadow
from shared.runs import RunStore
from shared.settings import Settings


class DescribedSource(ChampionSource, Protocol):
    """A champion source that can also fetch a version's SHAP importances."""

    def importances(self, run_id: str) -> dict[str, Any] | None: ...


@dataclass
class Gateway:
    settings: Settings
    source: DescribedSource
    cache: ChampionCache
    redis: Redis
    runs: RunStore
    metrics: Metrics
    work_slots: WorkSlots
    prediction_log: PredictionLog | None = None  # None when turned off
    # The version tried beside the champion (POST /model/challenger) and what tries it; None
    # for a gateway built on a source with no challenger (pure tests).
    challenger: ChampionCache | None = None
    shadow: Shadow | None = None

    def champion(self) -> LoadedModel:
        """The served model, or a 503 that says how to get one."""
        model = self.cache.current
        if model is None:
            raise ApiError(
                503,
                "no_model",
                "no champion model is being served yet",
                hint="POST /retrain to train one; it is served as soon as it is promoted",
            )
        return model


def gateway() -> Gateway:
    """The gateway of the app handling the current request."""
    state: Gateway = current_app.extensions["gateway"]
    return state
