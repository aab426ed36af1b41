"""Choosing the winner of a run and deciding whether it replaces the champion. Pure."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from shared.errors import TrainingFailedError


@dataclass
class FinishedCandidate:
    """A candidate's finished training run: its id, metrics and model (None until logged)."""

    run_id: str
    metrics: dict[str, float]
    model_uri: str | None


def finished_candidates(
    runs: Iterable[Any], names: list[str], model_uri_tag: str
) -> dict[str, FinishedCandidate]:
    """Every candidate's finished training run (MLflow runs, newest first: a candidate fitted
    again supersedes its earlier run), in grid order; TrainingFailedError names any missing."""
    newest: dict[str, Any] = {}
    for run in runs:
        newest.setdefault(run.data.tags["name"], run)
    missing = [name for name in names if name not in newest]
    if missing:
        raise TrainingFailedError(f"no finished training run for: {', '.join(missing)}")
    return {
        name: FinishedCandidate(
            newest[name].info.run_id,
            dict(newest[name].data.metrics),
            newest[name].data.tags.get(model_uri_tag),
        )
        for name in names
    }


def pick_winner(scores: dict[str, dict[str, float]], metric: str) -> str:
    """The candidate with the highest metric; on a tie, the one listed first in the grid."""
    if not scores:
        raise ValueError("no candidate scores to choose from")
    best = max(scores.values(), key=lambda s: s[metric])[metric]
    return next(name for name, s in scores.items() if s[metric] == best)


@dataclass(frozen=True)
class GateRules:
    """The promotion gate's settings (config/pipeline.yaml, select:)."""

    metric: str
    min_score: float  # absolute floor: a model near chance is never promoted
    max_drop: float  # how far below the champion's score at its own promotion a version may be


@dataclass(frozen=True)
class ChampionScores:
    """What the gate knows of the current champion."""

    version: str
    # On this run's test split; None when this code can no longer run the champion.
    score_now: float | None
    # As recorded when it was promoted; None for versions promoted before it was recorded.
    score_at_promotion: float | None


@dataclass(frozen=True)
class GateDecision:
    """Whether a version takes the alias and, if not, every condition it failed, with numbers."""

    promoted: bool
    failed: dict[str, str] = field(default_factory=dict)  # condition -> why, with its numbers

    @property
    def decision(self) -> str:
        return "promoted" if self.promoted else "not_promoted"

    @property
    def reason(self) -> str:
        return "; ".join(self.failed.values()) if self.failed else "passed every condition"


def decide_promotion(
    score: float, rules: GateRules, champion: ChampionScores | None
) -> GateDecision:
    """Promote only a version that clears the floor, is at least as good as the champion on
    the same split, and has not dropped more than the margin below the champion's score at
    its own promotion. The last two catch data that makes every model look alike: on
    shuffled prices both the candidate and the re-scored champion sit near chance."""
    metric, failed = rules.metric, {}
    if score < rules.min_score:
        failed["min_score"] = (
            f"{metric} {score:.4f} is below the floor {rules.min_score:.4f} (select.min_score)"
        )
    if champion is not None and champion.score_now is not None and score < champion.score_now:
        failed["champion_now"] = (
            f"{metric} {score:.4f} is below champion v{champion.version}'s "
            f"{champion.score_now:.4f} on this run's test split"
        )
    if (
        champion is not None
        and champion.score_at_promotion is not None
        and score < champion.score_at_promotion - rules.max_drop
    ):
        failed["max_drop"] = (
            f"{metric} {score:.4f} is more than {rules.max_drop:.4f} (select.max_drop) below "
            f"champion v{champion.version}'s {champion.score_at_promotion:.4f} at its promotion"
        )
    return GateDecision(promoted=not failed, failed=failed)


# The columns of a run's candidate report: (metric key, heading, scale, decimals).
REPORT_COLUMNS = (
    ("accuracy", "accuracy", 1.0, 4),
    ("f1_macro", "macro F1", 1.0, 4),
    ("roc_auc_ovr", "ROC AUC", 1.0, 4),
    ("recall_lux", "Lux recall", 1.0, 4),
    ("fit_seconds", "fit s", 1.0, 1),
    ("model_size_bytes", "model MB", 1e-6, 2),
    ("predict_ms_single_row", "predict ms", 1.0, 2),
)
# The metrics reported wherever a model is summarised (run status, /model, the report); MLflow
# holds them all.
REPORTED_METRICS = tuple(key for key, *_ in REPORT_COLUMNS)


def candidate_report(scores: dict[str, dict[str, float]], winner: str) -> list[dict[str, object]]:
    """One row per candidate with the figures users compare, the winner marked."""
    rows: list[dict[str, object]] = []
    for name, metrics in scores.items():
        row: dict[str, object] = {"candidate": name, "winner": name == winner}
        for key, _, scale, decimals in REPORT_COLUMNS:
            row[key] = round(metrics[key] * scale, decimals) if key in metrics else None
        rows.append(row)
    return rows


def report_markdown(rows: list[dict[str, object]]) -> str:
    """The candidate report as a Markdown table (the MLflow artifact people read)."""
    headings = ["candidate", *(heading for _, heading, _, _ in REPORT_COLUMNS)]
    lines = ["| " + " | ".join(headings) + " |", "|" + "---|" * len(headings)]
    for row in rows:
        name = f"**{row['candidate']}** (winner)" if row["winner"] else str(row["candidate"])
        cells = [name, *("" if row[key] is None else str(row[key]) for key, *_ in REPORT_COLUMNS)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
