"""The challenger's shadow scoring: what one request tallies, what a tally says, and that the
route scores a request with the challenger only after answering it with the champion."""

import pytest

from services.gateway import shadow
from services.gateway.app import create_app
from services.gateway.champion import LoadedModel
from shared.contracts import CHALLENGE_EXAMPLE
from tests.unit.gateway.conftest import FakeSource

LISTING = CHALLENGE_EXAMPLE


def test_one_request_tallies_agreement_each_category_and_its_latency_bucket():
    counts = shadow.compare(["Low", "Mid", "Mid", "Lux"], ["Low", "High", "Mid", "Mid"], 0.7)
    assert counts == {
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
    latency = said["latency_ms"]
    assert latency["mean"] == pytest.approx((0.7 + 98 * 0.15 + 30) / 100, abs=1e-3)
    assert latency["p50_at_most"] == 0.2  # 98 of 100 under 0.2 ms
    assert latency["p99_at_most"] == 1  # the 99th is the 0.7 ms request
    assert said["since"] == "2026-12-07T00:00:00+00:00"


def test_an_empty_tally_says_nothing_rather_than_zero():
    said = shadow.summary({"since": "x"})
    assert said["agreement"] is None
    assert said["latency_ms"] == {"mean": None, "p50_at_most": None, "p99_at_most": None}


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


def _gateway(settings, source, challenger, share: float):
    settings = settings.model_copy(update={"challenger_share": share})
    app = create_app(settings, source=source, watch_champion=False, challenger_source=challenger)
    state = app.extensions["gateway"]
    state.cache.refresh()
    state.challenger.refresh()
    state.shadow.draw = lambda: 0.5  # a request is picked when its draw is below the share
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
    assert "challenger v9 could not score a request" in caplog.text


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
    bucket = "gateway_challenger_seconds_bucket"
    assert samples[(bucket, (("le", "0.0002"), ("version", "9")))] == 1
    assert samples[(bucket, (("le", "0.005"), ("version", "9")))] == 2
    assert samples[(bucket, (("le", "+Inf"), ("version", "9")))] == 2
    assert samples[("gateway_challenger_seconds_sum", (("version", "9"),))] == pytest.approx(
        0.00315
    )
