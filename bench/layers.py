"""One single-listing request below HTTP, layer by layer, in this process: the bare model,
the gateway's own work (parse, contract, predict, answer, encode), and the same through
Flask's WSGI app. The HTTP figures (gunicorn and the socket on top) come from the load runs;
each layer's cost is the difference between two neighbouring rows.

And one big batch, step by step as the route takes it, on one thread: where its time goes."""

import gc
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.wrk import LoadResult
from services.gateway.app import create_app
from services.gateway.champion import LoadedModel
from services.gateway.json_provider import FastJSONProvider
from services.gateway.predicting import _answers, _listings, answer_request
from shared.compiled_trees import proven_compiled
from shared.contracts import CHALLENGE_EXAMPLE, Listing
from shared.modeling import model_input, predict_matrix, probability_matrix
from shared.schema import PRICE_CATEGORIES
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

    def alias_version(self) -> str:
        return "1"

    def load(self, version: str) -> LoadedModel:
        return LoadedModel(version, self.pipeline)

    def importances(self, run_id: str) -> None:
        return None


def timed(
    call: Callable[[], Any], repeats: int, after: Callable[[Any], object] = lambda _: None
) -> LoadResult:
    """p50, p99 and calls per second of a call made repeats times in a row, after a warm-up;
    after(what the call returned) runs between calls, untimed."""
    for _ in range(min(100, repeats)):
        after(call())
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = call()
        timings.append((time.perf_counter() - started) * 1000)
        after(result)
    p50, p99 = np.percentile(timings, [50, 99])
    return LoadResult(float(p50), float(p99), 1000 / float(np.mean(timings)), 0)


def measure_layers(pipeline: Any, repeats: int) -> Layers:
    settings = _settings()
    app = create_app(settings, source=_Served(pipeline), watch_champion=False)
    app.extensions["gateway"].cache.refresh()
    model = app.extensions["gateway"].cache.current
    model.compiled = proven_compiled(pipeline)
    provider = FastJSONProvider(app)
    record = vars(Listing.model_validate(CHALLENGE_EXAMPLE))

    def gateway_work() -> bytes:
        body, _, _ = answer_request(BODY, settings, lambda: model)
        return provider.dumps(body).encode()

    client = app.test_client()

    def through_flask() -> Any:
        return client.post("/predict", data=BODY, content_type="application/json")

    return Layers(
        model=timed(lambda: probability_matrix(model.predictor, [record]), repeats),
        gateway_work=timed(gateway_work, repeats),
        # Closed untimed, as gunicorn closes a response once the client has it all: what
        # the gateway does then (its log line, metrics and log entry) the client never waits for.
        flask=timed(through_flask, repeats, after=lambda response: response.close()),
    )


def _settings() -> Settings:
    # Nothing listens on Redis' port: predicting never needs it. The trees are compiled by the
    # bench, at once, as the gateway does in the background.
    return Settings(
        redis_url="redis://127.0.0.1:9/0",
        mlflow_tracking_uri="http://127.0.0.1:9",
        compiled_trees=False,
    )


def measure_batch_layers(pipeline: Any, listings: list[dict], repeats: int) -> dict[str, float]:
    """Milliseconds (medians) of each step of one batch request below Flask, on one thread,
    with the garbage collector paused as the gateway pauses it for a request; then the whole
    of it with the collector paused and running, in turn."""
    settings = _settings()
    model = LoadedModel("1", pipeline)
    model.compiled = proven_compiled(pipeline)
    body = json.dumps(listings).encode()
    validated = _listings.validate_json(body)
    records = [vars(listing) for listing in validated]
    proba, prices = predict_matrix(model.predictor, records)
    labels = [PRICE_CATEGORIES[i] for i in proba.argmax(axis=1)]
    answers = _answers(model, validated, labels, proba, prices)
    encoder = FastJSONProvider(create_app(settings, source=_Served(pipeline), watch_champion=False))
    steps: dict[str, Callable[[], object]] = {
        "parse and validate against the contract (pydantic, from the bytes)": lambda: (
            _listings.validate_json(body)
        ),
        "build the features": lambda: model_input(model.predictor, records),
        "build the features and predict (compiled trees)": lambda: predict_matrix(
            model.predictor, records
        ),
        "the answers as Python objects": lambda: _answers(model, validated, labels, proba, prices),
        "encode the answers (orjson)": lambda: encoder.dumps(
            {"model_version": "1", "predictions": answers}
        ),
    }

    def whole() -> None:
        answered, _, _ = answer_request(body, settings, lambda: model, batch_threads=1)
        encoder.dumps(answered)

    # Out of the collector's passes, as services.gateway.wsgi freezes what it loaded: the
    # model, and the inputs above (the gateway holds none of them during a request).
    gc.freeze()
    results = {}
    with collector(paused=True):
        for name, step in steps.items():
            results[name] = timed(step, repeats).p50_ms
    for paused in (True, False, True, False):  # in turn, so drift hits both alike
        with collector(paused):
            key = f"all of it, collector {'paused (as served)' if paused else 'running'}"
            results[key] = min(results.get(key, float("inf")), timed(whole, repeats).p50_ms)
    return results


@contextmanager
def collector(paused: bool) -> Iterator[None]:
    """The garbage collector paused or running within a block, and as it was after."""
    was = gc.isenabled()
    gc.disable() if paused else gc.enable()
    try:
        yield
    finally:
        gc.enable() if was else gc.disable()
