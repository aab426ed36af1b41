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
