"""The challenger's shadow scoring: what a pass tallies, what a tally says, and that the route
scores requests with the challenger in passes, only after answering them with the champion."""

import pytest

from services.gateway import shadow
from services.gateway.app import create_app
from services.gateway.champion import LoadedModel
from shared.contracts import CHALLENGE_EXAMPLE
from tests.unit.gateway.conftest import FakeSource

LISTING = CHALLENGE_EXAMPLE


def test_a_pass_tallies_agreement_each_category_and_its_time_bucket():
    counts = shadow.compare(["Low", "Mid", "Mid", "Lux"], ["Low", "High", "Mid", "Mid"], 0.7)
    assert counts == {
        "passes": 1,
        "requests": 1,
        "listings": 4,
        "le:1": 1,
        "us": 700,
        "champion:Low": 1,
        "champion:Mid": 2,
        "champion:Lux": 1,
        "agreed": 2,
        "disagreed:Mid:High": 1,
        "disagreed:Lux:Mid": 1,
    }


def test_a_tally_says_the_agreement_the_disagreement_per_category_and_the_latency():
    total = shadow.compare(["Low", "Mid", "Mid", "Lux"], ["Low", "High", "Mid", "Mid"], 0.7)
    for _ in range(98):
        total.update(shadow.compare(["Low"], ["Low"], 0.15))
    total.update(shadow.compare(["High"], ["High"], 30.0))
    said = shadow.summary({"since": "2026-12-07T00:00:00+00:00", **total})
    assert said["requests"] == 100 and said["listings"] == 103
    assert said["agreement"] == pytest.approx(101 / 103)
    mid = said["by_champion_category"]["Mid"]
    assert mid == {
        "listings": 2,
        "disagreed": 1,
        "disagreement": 0.5,
        "challenger_said": {"High": 1},
    }
    assert said["by_champion_category"]["Low"]["disagreement"] == 0
    assert said["by_champion_category"]["High"]["listings"] == 1
    scoring = said["scoring_ms"]
    assert scoring["passes"] == 100
    assert scoring["pass_mean"] == pytest.approx((0.7 + 98 * 0.15 + 30) / 100, abs=1e-3)
    assert scoring["per_listing"] == pytest.approx((0.7 + 98 * 0.15 + 30) / 103, abs=1e-3)
    assert scoring["pass_p50_at_most"] == 0.2  # 98 of 100 under 0.2 ms
    assert scoring["pass_p99_at_most"] == 1  # the 99th is the 0.7 ms pass
    assert said["since"] == "2026-12-07T00:00:00+00:00"


def test_an_empty_tally_says_nothing_rather_than_zero():
    said = shadow.summary({"since": "x"})
    assert said["agreement"] is None
    assert said["scoring_ms"]["passes"] == 0 and said["scoring_ms"]["per_listing"] is None


class _Challenger(FakeSource):
    """The challenger alias of the test's registry, at version 9 (the champion is 7)."""

    def __init__(self, pipeline, fail: bool = False) -> None:
        super().__init__(pipeline)
        self.version = "9"
        self.fail = fail

    def load(self, version: str) -> LoadedModel:
        loaded = super().load(version)
        if self.fail:
            loaded.pipeline = None  # predicting with it raises
        return loaded


def _gateway(settings, source, challenger, share: float, pass_listings: int = 1):
    settings = settings.model_copy(update={"challenger_share": share})
    app = create_app(settings, source=source, watch_champion=False, challenger_source=challenger)
    state = app.extensions["gateway"]
    state.cache.refresh()
    state.challenger.refresh()
    state.shadow.draw = lambda: 0.5  # a request is picked when its draw is below the share
    state.shadow.pass_listings = pass_listings
    return app, state


def _unsent(state) -> dict:
    return {key: dict(counts) for key, counts in state.shadow._unsent.items()}


def test_a_picked_request_is_scored_by_the_challenger_after_the_champion_answers(
    settings, source, small_pipeline
):
    app, state = _gateway(settings, source, _Challenger(small_pipeline), share=0.6)
    client = app.test_client()
    with client.post("/predict", json=LISTING) as reply:
        assert reply.status_code == 200
        answer = reply.get_json()
        assert answer["model_version"] == "7"  # the client sees the champion only
        assert "challenger" not in str(answer)
        assert _unsent(state) == {}  # not scored before the answer is done with
    tallied = _unsent(state)["price-category:challenger:v9"]
    assert tallied["requests"] == 1 and tallied["listings"] == 1
    assert tallied["agreed"] == 1  # the same pipeline: the same category
    assert tallied[f"champion:{answer['price_category']}"] == 1


@pytest.mark.parametrize("share", [0.0, 0.5])  # a draw of 0.5 is not below either
def test_a_request_not_picked_is_not_scored_by_the_challenger(
    settings, source, small_pipeline, share
):
    app, state = _gateway(settings, source, _Challenger(small_pipeline), share=share)
    with app.test_client().post("/predict", json=[LISTING, LISTING]) as reply:
        assert reply.status_code == 200
    assert _unsent(state) == {}


def test_a_challenger_that_is_now_champion_is_not_scored_twice(settings, source, small_pipeline):
    challenger = _Challenger(small_pipeline)
    challenger.version = "7"
    app, state = _gateway(settings, source, challenger, share=1.0)
    with app.test_client().post("/predict", json=LISTING) as reply:
        assert reply.status_code == 200
    assert _unsent(state) == {}


def test_a_failing_challenger_never_fails_the_answer(settings, source, small_pipeline, caplog):
    app, state = _gateway(settings, source, _Challenger(small_pipeline, fail=True), share=1.0)
    with app.test_client().post("/predict", json=LISTING) as reply:
        assert reply.status_code == 200
        assert reply.get_json()["model_version"] == "7"
    assert _unsent(state) == {}
    assert "challenger v9 could not score 1 listings" in caplog.text


def test_tallies_redis_did_not_take_are_kept_for_the_next_send(settings, source, small_pipeline):
    app, state = _gateway(settings, source, _Challenger(small_pipeline), share=1.0)
    client = app.test_client()
    for _ in range(3):
        with client.post("/predict", json=LISTING):
            pass
    state.shadow.send()  # the unit settings' Redis port has nothing listening
    assert _unsent(state)["price-category:challenger:v9"]["requests"] == 3


def test_metrics_give_the_tallies_as_counters_and_the_latency_as_a_histogram():
    from services.gateway.metrics import challenger_families

    total = shadow.compare(["Low", "Mid"], ["Low", "High"], 0.15)
    total.update(shadow.compare(["Lux"], ["Lux"], 3.0))
    families = {f.name: f for f in challenger_families("9", {"since": "x", **total})}
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in families.values()
        for s in family.samples
    }
    assert samples[("gateway_challenger_requests_total", (("version", "9"),))] == 2
    assert samples[("gateway_challenger_agreed_total", (("version", "9"),))] == 2
    key = (("challenger_category", "High"), ("champion_category", "Mid"), ("version", "9"))
    assert samples[("gateway_challenger_disagreed_total", key)] == 1
    bucket = "gateway_challenger_pass_seconds_bucket"
    assert samples[(bucket, (("le", "0.0002"), ("version", "9")))] == 1
    assert samples[(bucket, (("le", "0.005"), ("version", "9")))] == 2
    assert samples[(bucket, (("le", "+Inf"), ("version", "9")))] == 2
    assert samples[("gateway_challenger_pass_seconds_sum", (("version", "9"),))] == pytest.approx(
        0.00315
    )


def test_picked_requests_wait_for_a_pass_of_their_own_size_then_are_scored_in_one(
    settings, source, small_pipeline
):
    app, state = _gateway(settings, source, _Challenger(small_pipeline), share=1.0, pass_listings=5)
    client = app.test_client()
    for _ in range(2):  # 1 + 2 listings: 3 waiting, under the pass's 5
        with client.post("/predict", json=LISTING), client.post("/predict", json=[LISTING] * 2):
            pass
        if _ == 0:
            assert _unsent(state) == {}
    # The request that brought the 5th and 6th listing scored all six once answered.
    tallied = _unsent(state)["price-category:challenger:v9"]
    assert (tallied["passes"], tallied["requests"], tallied["listings"]) == (1, 4, 6)


def test_listings_left_waiting_are_scored_by_the_sending_thread(
    settings, source, small_pipeline, monkeypatch
):
    app, state = _gateway(settings, source, _Challenger(small_pipeline), share=1.0, pass_listings=5)
    with app.test_client().post("/predict", json=LISTING):
        pass
    assert not state.shadow._left_waiting()  # not yet: a picked request may still come
    monkeypatch.setattr(shadow, "PASS_WAIT_SECONDS", 0.0)
    assert state.shadow._left_waiting()
    state.shadow.score_waiting()
    assert _unsent(state)["price-category:challenger:v9"]["listings"] == 1
