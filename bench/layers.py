"""One single-listing request below HTTP, layer by layer, in this process: the bare model,
the gateway's own work (parse, contract, predict, answer, encode), and the same through
Flask's WSGI app. The HTTP figures (gunicorn and the socket on top) come from the load runs;
each layer's cost is the difference between two neighbouring rows."""

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.wrk import LoadResult
from services.gateway.app import create_app
from services.gateway.champion import LoadedModel
from services.gateway.json_provider import FastJSONProvider
from services.gateway.predicting import answer_request
from shared.compiled_trees import proven_compiled
from shared.contracts import CHALLENGE_EXAMPLE, Listing
from shared.modeling import probability_matrix
from shared.settings import Settings

BODY = json.dumps(CHALLENGE_EXAMPLE).encode()


@dataclass
class Layers:
    model: LoadResult  # one record to probabilities
    gateway_work: LoadResult  # the body's bytes to the answer's bytes, as the route does it
    flask: LoadResult  # the same request through the Flask app, no socket


class _Served:
    """The champion source of an app that serves one pipeline, version 1."""

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline

    def champion_version(self) -> str:
        return "1"

    def load(self, version: str) -> LoadedModel:
        return LoadedModel(version, self.pipeline)

    def importances(self, run_id: str) -> None:
        return None


def timed(call: Callable[[], object], repeats: int) -> LoadResult:
    """p50, p99 and calls per second of a call made repeats times in a row, after a warm-up."""
    for _ in range(min(100, repeats)):
        call()
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        timings.append((time.perf_counter() - started) * 1000)
    p50, p99 = np.percentile(timings, [50, 99])
    return LoadResult(float(p50), float(p99), 1000 / float(np.mean(timings)), 0)


def measure_layers(pipeline: Any, repeats: int) -> Layers:
    # Nothing listens on Redis' port: predicting never needs it.
    settings = Settings(
        redis_url="redis://127.0.0.1:9/0",
        mlflow_tracking_uri="http://127.0.0.1:9",
        compiled_trees=False,  # compiled below, at once, as the gateway does in the background
    )
    app = create_app(settings, source=_Served(pipeline), watch_champion=False)
    app.extensions["gateway"].cache.refresh()
    model = app.extensions["gateway"].cache.current
    model.compiled = proven_compiled(pipeline)
    provider = FastJSONProvider(app)
    record = vars(Listing.model_validate(CHALLENGE_EXAMPLE))

    def gateway_work() -> bytes:
        body, _, _ = answer_request(json.loads(BODY), settings, lambda: model)
        return provider.dumps(body).encode()

    client = app.test_client()

    def through_flask() -> None:
        client.post("/predict", data=BODY, content_type="application/json").close()

    return Layers(
        model=timed(lambda: probability_matrix(model.predictor, [record]), repeats),
        gateway_work=timed(gateway_work, repeats),
        flask=timed(through_flask, repeats),
    )
