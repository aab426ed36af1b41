"""Choosing the winner of a run and deciding whether it replaces the champion. Pure."""

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from shared.errors import TrainingFailedError
from shared.schema import PRICE_CATEGORIES


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
    """The candidate with the highest metric; on a tie, the one listed first in the grid. A
    candidate whose score is not a number never wins over one whose score is."""
    if not scores:
        raise ValueError("no candidate scores to choose from")
    finite = {name: s for name, s in scores.items() if math.isfinite(s[metric])}
    if not finite:
        return next(iter(scores))  # the gate refuses it, naming the score
    best = max(s[metric] for s in finite.values())
    return next(name for name, s in finite.items() if s[metric] == best)


@dataclass(frozen=True)
class GateRules:
    """The promotion gate's settings (config/pipeline.yaml, select:)."""

    metric: str
    min_score: float  # absolute floor: a model near chance is never promoted
    max_drop: float  # how far below the champion's score at its own promotion a version may be
    # The fewest test listings, of every category, a comparison with the champion may use.
    min_compared_rows: int = 200
    # How far below the champion, on the listings compared, a version may score and still count
    # as at least as good: the comparison's own noise.
    champion_tolerance: float = 0.0
    # Conditions beyond the metric, each against the champion on the listings compared (None:
    # not required): no category's recall more than this below the champion's...
    max_recall_drop: float | None = None
    # ...and a calibration error (ECE) no more than this above the champion's.
    max_calibration_error_rise: float | None = None


@dataclass(frozen=True)
class Comparison:
    """Candidate and a promoted version scored on the same test listings, none of which either
    trained on."""

    version: str
    rows: int  # test listings compared
    candidate_score: float
    score: float  # the promoted version's
    # Why this is not the champion itself (it could not be loaded or compared); "" if it is.
    note: str = ""
    # Every metric of each on these listings (score_predictions), for the gate's other
    # conditions.
    candidate_metrics: Mapping[str, float] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    # Which listings, as the reasons name them (a challenger is compared on live ones).
    listings: str = "test listings neither trained on"


@dataclass(frozen=True)
class ChampionScores:
    """What the gate knows of the current champion."""

    version: str
    # As recorded when it was promoted; None for versions promoted before it was recorded.
    score_at_promotion: float | None
    # With the champion, or else the last promoted version that could be compared; None when
    # none could (uncompared says why).
    comparison: Comparison | None = None
    uncompared: str = ""


@dataclass(frozen=True)
class Check:
    """One condition of the gate and the numbers it compared: the version's value, the bound
    it had to reach (at least, or at most for a calibration error), and the number the bound
    came from (the champion's; None for the floor)."""

    condition: str
    value: float
    bound: float
    champion: float | None
    passed: bool


@dataclass(frozen=True)
class GateDecision:
    """Whether a version takes the alias and, if not, every condition it failed, with numbers."""

    promoted: bool
    failed: dict[str, str] = field(default_factory=dict)  # condition -> why, with its numbers
    checks: tuple[Check, ...] = ()  # every condition checked, passed or not

    @property
    def decision(self) -> str:
        return "promoted" if self.promoted else "not_promoted"

    @property
    def reason(self) -> str:
        return "; ".join(self.failed.values()) if self.failed else "passed every condition"


def decide_promotion(
    score: float, rules: GateRules, champion: ChampionScores | None
) -> GateDecision:
    """Promote only a version with a finite score that clears the floor, is at least as good as
    the champion (or the last promoted version that can be compared) on test listings neither
    trained on, and has not dropped more than the margin below the champion's score at its own
    promotion. The last two catch data that makes every model look alike: on shuffled prices
    both the candidate and the re-scored champion sit near chance. The rules may also require
    every category's recall and the calibration error to stay near the compared version's."""
    metric = rules.metric
    if not math.isfinite(score):
        # NaN compares False with everything: without this it would pass every condition.
        why = f"{metric} {score} is not a number a model can be judged by"
        return GateDecision(promoted=False, failed={"finite": why})
    checks, failed = [], {}
    floor = Check("min_score", score, rules.min_score, None, score >= rules.min_score)
    checks.append(floor)
    if not floor.passed:
        failed["min_score"] = (
            f"{metric} {score:.4f} is below the floor {rules.min_score:.4f} (select.min_score)"
        )
    compared = champion.comparison if champion is not None else None
    if compared is not None:
        compared_checks = _compared_checks(rules, compared)
        checks += [check for check, _ in compared_checks]
        failed |= {check.condition: why for check, why in compared_checks if not check.passed}
    if champion is not None and champion.score_at_promotion is not None:
        at_promotion = champion.score_at_promotion
        kept = Check("max_drop", score, at_promotion - rules.max_drop, at_promotion, True)
        checks.append(replace(kept, passed=score >= kept.bound))
        if score < kept.bound:
            failed["max_drop"] = (
                f"{metric} {score:.4f} is more than {rules.max_drop:.4f} (select.max_drop) "
                f"below champion v{champion.version}'s {at_promotion:.4f} at its promotion"
            )
    return GateDecision(promoted=not failed, failed=failed, checks=tuple(checks))


def _compared_checks(rules: GateRules, compared: Comparison) -> list[tuple[Check, str]]:
    """The conditions checked against the compared version on the same listings, each with
    why it failed (read only if it did)."""
    where = f"v{compared.version}'s {{:.4f}} on the {compared.rows} {compared.listings}"
    tolerance = rules.champion_tolerance
    below = f"more than {tolerance:.4f} (select.champion_tolerance) below" if tolerance else "below"
    value, theirs = compared.candidate_score, compared.score
    checks = [
        (
            Check("champion_now", value, theirs - tolerance, theirs, value >= theirs - tolerance),
            f"{rules.metric} {value:.4f} is {below} " + where.format(theirs),
        )
    ]
    mine, champion = compared.candidate_metrics, compared.metrics
    if rules.max_recall_drop is not None:
        margin = rules.max_recall_drop
        for label in PRICE_CATEGORIES:
            key = f"recall_{label.lower()}"
            if key in mine and key in champion:
                value, theirs = mine[key], champion[key]
                check = Check(key, value, theirs - margin, theirs, value >= theirs - margin)
                why = (
                    f"{label} recall {value:.4f} is more than {margin:.4f} "
                    "(select.max_recall_drop) below " + where.format(theirs)
                )
                checks.append((check, why))
    key = "calibration_error"
    if rules.max_calibration_error_rise is not None and key in mine and key in champion:
        margin, value, theirs = rules.max_calibration_error_rise, mine[key], champion[key]
        check = Check(key, value, theirs + margin, theirs, value <= theirs + margin)
        why = (
            f"calibration error {value:.4f} is more than {margin:.4f} "
            "(select.max_calibration_error_rise) above " + where.format(theirs)
        )
        checks.append((check, why))
    return checks


# The columns of a run's candidate report: (metric key, heading, scale, decimals).
REPORT_COLUMNS = (
    ("accuracy", "accuracy", 1.0, 4),
    ("f1_macro", "macro F1", 1.0, 4),
    ("roc_auc_ovr", "ROC AUC", 1.0, 4),
    ("recall_low", "Low recall", 1.0, 4),
    ("recall_mid", "Mid recall", 1.0, 4),
    ("recall_high", "High recall", 1.0, 4),
    ("recall_lux", "Lux recall", 1.0, 4),
    ("calibration_error", "ECE", 1.0, 4),
    ("interval_coverage", "80% interval coverage", 1.0, 4),
    ("interval_median_width", "interval median width $", 1.0, 0),
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
