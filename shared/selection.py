"""Choosing the winner of a run and deciding whether it replaces the champion. Pure."""


def pick_winner(scores: dict[str, dict[str, float]], metric: str) -> str:
    """The candidate with the highest metric; on a tie, the one listed first in the grid."""
    if not scores:
        raise ValueError("no candidate scores to choose from")
    best = max(scores.values(), key=lambda s: s[metric])[metric]
    return next(name for name, s in scores.items() if s[metric] == best)


def should_promote(candidate_score: float, champion_score: float | None) -> bool:
    """A new version takes the alias when there is no champion or it scores at least as well."""
    return champion_score is None or candidate_score >= champion_score
