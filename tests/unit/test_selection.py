import pytest

from shared.selection import pick_winner, should_promote


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
