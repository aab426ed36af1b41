import pytest

from shared.selection import candidate_report, pick_winner, report_markdown, should_promote


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


@pytest.mark.parametrize(
    ("candidate", "champion", "promote"),
    [(0.9, None, True), (0.9, 0.8, True), (0.9, 0.9, True), (0.8, 0.9, False)],
)
def test_should_promote_when_at_least_as_good(candidate, champion, promote):
    assert should_promote(candidate, champion) is promote


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
