"""Which refused winner becomes the challenger, and which challenger a run may replace."""

import pytest

from shared.challenger import near_miss, replaceable_by_a_run
from shared.lifecycle import Event
from shared.selection import Comparison, GateDecision

REFUSED_ON_SCORE = GateDecision(promoted=False, failed={"champion_now": "below"})


def _compared(candidate: float, champion: float = 0.90) -> Comparison:
    return Comparison("3", 4000, candidate, champion)


@pytest.mark.parametrize(
    "candidate, short",
    [
        (0.8965, 0.0005),  # 0.0035 below: 0.0005 beyond the tolerance
        (0.887, 0.01),  # exactly the margin beyond it
    ],
)
def test_a_winner_refused_only_on_score_within_the_margin_is_a_near_miss(candidate, short):
    assert near_miss(REFUSED_ON_SCORE, _compared(candidate), 0.003, 0.01) == pytest.approx(short)


@pytest.mark.parametrize(
    "decision, compared, margin",
    [
        (REFUSED_ON_SCORE, _compared(0.886), 0.01),  # further below than the margin
        (REFUSED_ON_SCORE, _compared(0.8965), None),  # near misses not wanted
        (REFUSED_ON_SCORE, None, 0.01),  # no champion compared
        # Also failed another condition: live traffic must not try a model that gave up Lux.
        (
            GateDecision(promoted=False, failed={"champion_now": "x", "recall_lux": "y"}),
            _compared(0.8965),
            0.01,
        ),
        (GateDecision(promoted=False, failed={"min_score": "x"}), _compared(0.8965), 0.01),
        (GateDecision(promoted=True), _compared(0.95), 0.01),
    ],
)
def test_anything_else_is_not(decision, compared, margin):
    assert near_miss(decision, compared, 0.003, margin) is None


def _set(version: str, by: dict) -> Event:
    return Event("2026-12-07T10:00:00+00:00", "challenger_set", version, by=by)


def test_a_run_replaces_no_challenger_or_one_a_run_set_but_not_one_set_by_hand():
    events = [_set("5", {"run_id": "r2"}), _set("4", {"token": "retrain", "request_id": "x"})]
    assert replaceable_by_a_run(events, None)
    assert replaceable_by_a_run(events, "5")
    assert not replaceable_by_a_run(events, "4")
