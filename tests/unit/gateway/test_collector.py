import gc

import pytest

from services.gateway.collector import CollectorPausedPerRequest
from services.gateway.routes import predict as predict_route
from shared.contracts import CHALLENGE_EXAMPLE


@pytest.fixture
def collector_on():
    """The collector on before the test and after it, whatever the test leaves."""
    gc.enable()
    yield
    gc.enable()


def test_a_prediction_is_made_with_the_collector_paused_and_it_is_on_after(
    client, monkeypatch, collector_on
):
    seen = []
    answer = predict_route.answer_listings

    def recording(*args, **kwargs):
        seen.append(gc.isenabled())
        return answer(*args, **kwargs)

    monkeypatch.setattr(predict_route, "answer_listings", recording)
    assert client.post("/predict", json=[CHALLENGE_EXAMPLE] * 2).status_code == 200
    assert seen == [False]
    assert gc.isenabled()
    # A refused request turns it back on as well.
    assert client.post("/predict", data="{", content_type="application/json").status_code == 400
    assert gc.isenabled()


def _app(seen, fail=False):
    def app(environ, start_response):
        seen.append(gc.isenabled())
        if fail:
            raise RuntimeError("the app failed")
        start_response("200 OK", [])
        return [b"ok"]

    return CollectorPausedPerRequest(app)


def test_an_app_that_raises_leaves_the_collector_on(collector_on):
    seen = []
    with pytest.raises(RuntimeError, match="the app failed"):
        _app(seen, fail=True)({}, lambda *a: None)
    assert seen == [False]
    assert gc.isenabled()


def test_a_collector_paused_by_someone_else_stays_paused(collector_on):
    gc.disable()
    seen = []
    assert _app(seen)({}, lambda *a: None) == [b"ok"]
    assert seen == [False]
    assert not gc.isenabled()  # theirs to resume, not the request's
