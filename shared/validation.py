"""Is the cleaned data fit to train on? Expectations checked before any candidate trains. Pure.

Cleaning drops the rows it cannot use; what it cannot see is a dump that is wrong as a whole:
prices in another unit, columns shifted, half the city missing. Those still clean, still train
and, at worst, still pass the gate by luck. The checks here compare the cleaned data with the
request contract's fields (shared.schema), with configured ranges, and with the last data that
passed, and name every expectation that is broken, with its numbers.
"""

from dataclasses import dataclass, field

import pandas as pd
from pandas.api import types

from shared.schema import (
    AMENITY_FLAGS,
    CATEGORICAL_FIELDS,
    COORDINATE_FIELDS,
    COUNT_FIELDS,
    FROM_FEEDBACK,
    OPTIONAL_FLAGS,
    PRICE_CATEGORIES,
    TARGET,
)

# Each column the models and the split read, by the kind of values it must hold.
TEXT_COLUMNS = (*CATEGORICAL_FIELDS, TARGET)
NUMBER_COLUMNS = (*COUNT_FIELDS, *COORDINATE_FIELDS, "price")
FLAG_COLUMNS = AMENITY_FLAGS


@dataclass(frozen=True)
class Expectations:
    """Bounds the cleaned data must keep (config/pipeline.yaml, validate:)."""

    ranges: dict[str, tuple[float, float]]  # column -> inclusive bounds of every value
    min_rows: int  # rows left after cleaning
    max_dropped_share: float  # of the raw rows, dropped by cleaning
    # Against the last data that passed: largest change of any category's share (absolute),
    # and of the row count (relative).
    max_category_shift: float
    max_row_change: float
    # Listings of each category, at the least: a model must learn, and be scored on, all four.
    min_category_rows: int = 20


@dataclass(frozen=True)
class DataProfile:
    """What the next run's data is compared with: its size and its category mix."""

    rows_in: int
    rows_out: int
    category_shares: dict[str, float]


@dataclass
class ValidationReport:
    """The profile of the data checked, what it was compared with, and every broken
    expectation as a sentence with its numbers (none: the data passed)."""

    profile: DataProfile
    baseline: DataProfile | None
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def profile_of(clean: pd.DataFrame, rows_in: int) -> DataProfile:
    shares = clean[TARGET].value_counts(normalize=True) if TARGET in clean else pd.Series()
    return DataProfile(
        rows_in,
        len(clean),
        {label: round(float(shares.get(label, 0.0)), 6) for label in PRICE_CATEGORIES},
    )


def _column_failures(clean: pd.DataFrame) -> list[str]:
    failures = []
    kinds = [
        (TEXT_COLUMNS, "text", lambda s: types.is_string_dtype(s) or types.is_object_dtype(s)),
        (NUMBER_COLUMNS, "numbers", types.is_numeric_dtype),
        (
            FLAG_COLUMNS,
            "0/1 flags",
            lambda s: types.is_integer_dtype(s) and s.dropna().isin([0, 1]).all(),
        ),
    ]
    for columns, kind, holds in kinds:
        for column in columns:
            if column not in clean:
                failures.append(f"column {column} is missing")
            elif not holds(clean[column]):
                failures.append(f"column {column} should hold {kind}, holds {clean[column].dtype}")
    failures += _missing_flag_failures(clean)
    if TARGET in clean:
        unknown = sorted(set(clean[TARGET].dropna().astype(str)) - set(PRICE_CATEGORIES))
        if unknown:
            failures.append(f"{TARGET} holds unknown categories: {', '.join(unknown[:5])}")
    return failures


def _missing_flag_failures(clean: pd.DataFrame) -> list[str]:
    """A dump's listings have every flag (cleaning reads them from the amenities); a realised
    price's listing may lack an optional one, as its request could (shared.contracts)."""
    from_request = clean.get(FROM_FEEDBACK, pd.Series(False, index=clean.index)).astype(bool)
    failures = []
    for flag in FLAG_COLUMNS:
        if flag not in clean:
            continue
        may_lack = from_request if flag in OPTIONAL_FLAGS else False
        lacking = int((clean[flag].isna() & ~may_lack).sum())
        if lacking:
            failures.append(f"column {flag} lacks {lacking} value(s)")
    return failures


def _range_failures(clean: pd.DataFrame, ranges: dict[str, tuple[float, float]]) -> list[str]:
    failures = []
    for column, (low, high) in ranges.items():
        if column not in clean or not types.is_numeric_dtype(clean[column]):
            continue  # reported with the columns
        values = clean[column].dropna()
        outside = int(((values < low) | (values > high)).sum())
        if outside:
            failures.append(
                f"{column}: {outside} of {len(values)} values outside [{low:g}, {high:g}] "
                f"(min {values.min():g}, max {values.max():g})"
            )
    return failures


def _drift_failures(
    profile: DataProfile, baseline: DataProfile, expected: Expectations
) -> list[str]:
    failures = []
    for label in PRICE_CATEGORIES:
        now, before = profile.category_shares[label], baseline.category_shares.get(label, 0.0)
        if abs(now - before) > expected.max_category_shift:
            failures.append(
                f"share of {label} is {now:.1%}, was {before:.1%} in the last data that passed "
                f"(more than {expected.max_category_shift:.0%} apart, "
                "validate.max_category_shift)"
            )
    if baseline.rows_out:
        change = profile.rows_out / baseline.rows_out - 1
        if abs(change) > expected.max_row_change:
            failures.append(
                f"{profile.rows_out} rows, {change:+.0%} from the {baseline.rows_out} of the "
                f"last data that passed (more than {expected.max_row_change:.0%}, "
                "validate.max_row_change)"
            )
    return failures


def validate_clean(
    clean: pd.DataFrame, rows_in: int, expected: Expectations, baseline: DataProfile | None
) -> ValidationReport:
    """Check cleaned listings against the expectations and, when there is one, the profile
    of the last data that passed."""
    profile = profile_of(clean, rows_in)
    failures = _column_failures(clean) + _range_failures(clean, expected.ranges)
    if profile.rows_out < expected.min_rows:
        failures.append(
            f"{profile.rows_out} rows after cleaning, fewer than {expected.min_rows} "
            "(validate.min_rows)"
        )
    dropped = 1 - profile.rows_out / rows_in if rows_in else 1.0
    if dropped > expected.max_dropped_share:
        failures.append(
            f"cleaning dropped {dropped:.1%} of {rows_in} rows, more than "
            f"{expected.max_dropped_share:.0%} (validate.max_dropped_share)"
        )
    failures += _category_failures(clean, expected.min_category_rows)
    if baseline is not None:
        failures += _drift_failures(profile, baseline, expected)
    return ValidationReport(profile, baseline, failures)


def _category_failures(clean: pd.DataFrame, least: int) -> list[str]:
    """Each category with too few listings: training without one fails (its column of
    probabilities is missing) or scores nothing (ROC AUC needs every category)."""
    if TARGET not in clean:
        return []  # a missing column is reported as such
    counts = clean[TARGET].value_counts()
    failures = []
    for label in PRICE_CATEGORIES:
        count = int(counts.get(label, 0))
        if count == 0:
            failures.append(f"no {label} listing: every category must be present")
        elif count < least:
            failures.append(
                f"{count} {label} listings, fewer than {least} (validate.min_category_rows)"
            )
    return failures


def profile_metrics(profile: DataProfile) -> dict[str, float]:
    """A profile as MLflow metrics, read back by profile_from_metrics."""
    shares = {f"share_{label.lower()}": share for label, share in profile.category_shares.items()}
    return {"rows_in": profile.rows_in, "rows_out": profile.rows_out, **shares}


def profile_from_metrics(metrics: dict[str, float]) -> DataProfile:
    return DataProfile(
        int(metrics["rows_in"]),
        int(metrics["rows_out"]),
        {label: metrics.get(f"share_{label.lower()}", 0.0) for label in PRICE_CATEGORIES},
    )


def report_markdown(report: ValidationReport) -> str:
    """The report people read in MLflow: the verdict, each failure, the two profiles."""
    verdict = "passed" if report.passed else f"failed {len(report.failures)} expectation(s)"
    lines = [f"# Data validation: {verdict}", ""]
    lines += [f"- {failure}" for failure in report.failures] or ["- every expectation held"]
    lines += ["", "| | rows in | rows out | " + " | ".join(PRICE_CATEGORIES) + " |"]
    lines.append("|---" * (3 + len(PRICE_CATEGORIES)) + "|")
    for name, profile in (("this data", report.profile), ("last passed", report.baseline)):
        if profile is None:
            continue
        shares = " | ".join(f"{profile.category_shares[label]:.1%}" for label in PRICE_CATEGORIES)
        lines.append(f"| {name} | {profile.rows_in} | {profile.rows_out} | {shares} |")
    return "\n".join(lines) + "\n"
