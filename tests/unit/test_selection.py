import pytest

from shared.params import load_params
from shared.selection import (
    ChampionScores,
    GateRules,
    candidate_report,
    decide_promotion,
    pick_winner,
    report_markdown,
)
from shared.settings import PROJECT_DIR


@pytest.mark.parametrize(
    ("scores", "winner"),
    [
        ({"a": {"auc": 0.8}, "b": {"auc": 0.9}}, "b"),
        ({"a": {"auc": 0.9}, "b": {"auc": 0.9}}, "a"),  # a tie goes to the first listed
        ({"only": {"auc": 0.1}}, "only"),
    ],
)
def test_pick_winner(scores, winner):
    assert pick_winner(scores, "auc") == winner


def test_pick_winner_needs_candidates():
    with pytest.raises(ValueError):
        pick_winner({}, "auc")


RULES = GateRules("auc", min_score=0.75, max_drop=0.02)


def champion(now: float | None, at_promotion: float | None) -> ChampionScores:
    return ChampionScores("3", now, at_promotion)


@pytest.mark.parametrize(
    ("score", "current", "failed"),
    [
        (0.80, None, set()),  # the first version needs only the floor
        (0.74, None, {"min_score"}),
        (0.85, champion(0.85, 0.86), set()),  # a tie with the champion promotes
        (0.85, champion(0.86, 0.86), {"champion_now"}),
        # Shuffled prices: the candidate beats the champion re-scored on the same meaningless
        # split, but is near chance and far below what the champion scored when promoted.
        (0.52, champion(0.50, 0.88), {"min_score", "max_drop"}),
        (0.85, champion(0.80, 0.88), {"max_drop"}),  # a harder dump, but dropped too far
        (0.86, champion(0.80, 0.88), set()),  # exactly at the margin
        (0.80, champion(None, 0.81), set()),  # a champion this code cannot run: only its record
        (0.80, champion(0.70, None), set()),  # promoted before scores were recorded
    ],
)
def test_the_gate_names_every_condition_a_version_fails(score, current, failed):
    decision = decide_promotion(score, RULES, current)
    assert decision.promoted is (not failed)
    assert set(decision.failed) == failed
    assert decision.decision == ("promoted" if not failed else "not_promoted")
    for condition in failed:  # the reason carries the numbers compared
        assert f"{score:.4f}" in decision.failed[condition]
        assert decision.failed[condition] in decision.reason


def test_the_shipped_gate_floor_is_above_chance_and_below_the_notebook():
    rules = load_params(PROJECT_DIR / "config" / "pipeline.yaml").select.gate()
    assert rules.metric == "roc_auc_ovr"
    assert 0.5 < rules.min_score < 0.818  # chance < floor < the notebook's ROC AUC
    assert 0 < rules.max_drop <= 0.05


def test_candidate_report_marks_the_winner_and_scales_units():
    scores = {
        "a": {"accuracy": 0.61234567, "model_size_bytes": 60_200_000.0, "fit_seconds": 2.98},
        "b": {"accuracy": 0.69, "model_size_bytes": 5_520_664.0, "recall_lux": 0.49},
    }
    rows = candidate_report(scores, winner="b")
    assert [(r["candidate"], r["winner"]) for r in rows] == [("a", False), ("b", True)]
    assert rows[0]["accuracy"] == 0.6123
    assert rows[1]["model_size_bytes"] == 5.52  # reported in MB
    assert rows[0]["recall_lux"] is None  # a metric a candidate lacks stays empty
    table = report_markdown(rows).splitlines()
    assert table[0].startswith("| candidate | accuracy | macro F1 | ROC AUC")
    assert table[3].startswith("| **b** (winner) | 0.69 |")
