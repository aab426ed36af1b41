"""What promoting the challenger decides on: the two models on the same realised prices when
there are enough of them, else the challenger's own test score, as a run's gate would."""

from types import SimpleNamespace

import pytest

from services.gateway.errors import ApiError
from services.gateway.routes import challenger as route
from shared.selection import GateRules, decide_promotion

RULES = GateRules("roc_auc_ovr", min_score=0.75, max_drop=0.02, min_compared_rows=200,
                  champion_tolerance=0.003)  # fmt: skip


class _Registry:
    def __init__(self, challenger_tags: dict) -> None:
        self.tags = {
            "2": {"metric": "roc_auc_ovr", "score": "0.88"},  # the champion, at its promotion
            "5": challenger_tags,
        }

    def version(self, version: str) -> SimpleNamespace:
        return SimpleNamespace(tags=self.tags[version])


def _trial(judged: int, champion: float, challenger: float, champion_version: str = "2") -> dict:
    return {
        "version": "5",
        "champion_version": champion_version,
        "judged": judged,
        "champion": {"accuracy": 0.7, "roc_auc_ovr": champion},
        "challenger": {"accuracy": 0.7, "roc_auc_ovr": challenger},
    }


def _decide(monkeypatch, trial: dict | None, challenger_tags: dict):
    monkeypatch.setattr(route, "challenger_trial", lambda redis: trial)
    state = SimpleNamespace(redis=None)
    score, scores = route._gate_inputs(state, _Registry(challenger_tags), RULES, "5", "2")
    return score, scores, decide_promotion(score, RULES, scores)


def test_enough_realised_prices_compare_the_two_on_them(monkeypatch):
    score, scores, decision = _decide(monkeypatch, _trial(400, 0.90, 0.905), {})
    assert score == 0.905
    assert scores.comparison.rows == 400 and scores.comparison.score == 0.90
    assert decision.promoted


def test_a_challenger_below_the_champion_on_realised_prices_is_refused_saying_where(monkeypatch):
    _, _, decision = _decide(monkeypatch, _trial(400, 0.90, 0.89), {})
    assert not decision.promoted and set(decision.failed) == {"champion_now"}
    assert "on the 400 listings judged by realised prices" in decision.failed["champion_now"]


@pytest.mark.parametrize(
    "trial",
    [
        None,  # no realised price yet
        _trial(150, 0.90, 0.99),  # fewer than select.min_compared_rows
        _trial(400, 0.90, 0.99, champion_version="1"),  # scored beside another champion
    ],
)
def test_otherwise_its_own_test_score_decides_with_no_comparison(monkeypatch, trial):
    tags = {"metric": "roc_auc_ovr", "score": "0.87"}
    score, scores, decision = _decide(monkeypatch, trial, tags)
    assert score == 0.87 and scores.comparison is None
    assert "select.min_compared_rows 200" in scores.uncompared
    assert decision.promoted  # above the floor, within max_drop of the champion's 0.88


def test_with_neither_it_is_409_not_comparable(monkeypatch):
    with pytest.raises(ApiError) as refused:
        _decide(monkeypatch, None, {"test": "registered by hand"})
    assert (refused.value.status, refused.value.error) == (409, "not_comparable")
