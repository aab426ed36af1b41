"""The validate stage's checks: each broken expectation named with its numbers."""

import pandas as pd
import pytest

from shared.cleaning import clean_listings
from shared.errors import ConfigError
from shared.params import load_params
from shared.validation import DataProfile, Expectations, validate_clean
from tests.unit.listings import raw_frame

EXPECTED = Expectations(
    ranges={"price": (10.0, 10_000.0), "accommodates": (1.0, 30.0)},
    min_rows=4,
    max_dropped_share=0.2,
    max_category_shift=0.10,
    max_row_change=0.5,
    min_category_rows=2,
)
# Low, Mid, High, Lux: 2, 3, 3, 2 of 10.
PRICES = (50, 60, 100, 120, 150, 200, 300, 350, 500, 900)


def cleaned(prices) -> tuple[pd.DataFrame, int]:
    clean, report = clean_listings(raw_frame(*({"price": f"${p:,.2f}"} for p in prices)))
    return clean, report.rows_in


def test_data_like_the_last_that_passed_passes_with_its_profile():
    clean, rows_in = cleaned(PRICES)
    baseline = DataProfile(10, 10, {"Low": 0.25, "Mid": 0.25, "High": 0.25, "Lux": 0.25})

    report = validate_clean(clean, rows_in, EXPECTED, baseline)

    assert report.passed, report.failures
    assert report.profile == DataProfile(10, 10, {"Low": 0.2, "Mid": 0.3, "High": 0.3, "Lux": 0.2})


def test_prices_in_another_unit_shift_the_category_mix():
    clean, rows_in = cleaned(PRICES)
    baseline = validate_clean(clean, rows_in, EXPECTED, None).profile
    junk, junk_rows_in = cleaned(p * 100 for p in PRICES)  # cents read as dollars

    report = validate_clean(junk, junk_rows_in, EXPECTED, baseline)

    assert not report.passed
    assert "share of Lux is 100.0%, was 20.0%" in " ".join(report.failures)
    assert "share of Low is 0.0%, was 20.0%" in " ".join(report.failures)
    assert any("price: 7 of 10 values outside [10, 10000]" in f for f in report.failures)


def test_a_dump_without_a_category_or_with_too_few_of_one_is_stopped_naming_it():
    no_lux, rows_in = cleaned(p for p in PRICES if p <= 400)
    report = validate_clean(no_lux, rows_in, EXPECTED, None)
    assert report.failures == ["no Lux listing: every category must be present"]

    one_low, rows_in = cleaned([50, *PRICES[2:]])
    report = validate_clean(one_low, rows_in, EXPECTED, None)
    assert report.failures == ["1 Low listings, fewer than 2 (validate.min_category_rows)"]


def test_a_dump_cleaning_mostly_dropped_is_stopped():
    clean, rows_in = cleaned([*PRICES, 5, 5, 5, 5, 5])  # prices of $10 or less are dropped

    report = validate_clean(clean, rows_in, EXPECTED, None)

    assert report.failures == [
        "cleaning dropped 33.3% of 15 rows, more than 20% (validate.max_dropped_share)"
    ]


def test_shifted_columns_are_named_by_kind_and_range():
    clean, rows_in = cleaned(PRICES)
    shifted = clean.assign(neighbourhood=clean["accommodates"], accommodates=clean["price"])

    failures = validate_clean(shifted, rows_in, EXPECTED, None).failures

    assert "column neighbourhood should hold text, holds int64" in failures
    assert any(f.startswith("accommodates: 10 of 10 values outside [1, 30]") for f in failures)


def test_too_few_rows_or_far_fewer_than_last_time():
    clean, rows_in = cleaned(PRICES[:3])
    baseline = DataProfile(10, 10, {"Low": 0.2, "Mid": 0.3, "High": 0.3, "Lux": 0.2})

    failures = validate_clean(clean, rows_in, EXPECTED, baseline).failures

    assert "3 rows after cleaning, fewer than 4 (validate.min_rows)" in failures
    assert any(f.startswith("3 rows, -70% from the 10 of the last data") for f in failures)


def test_a_missing_column_is_named():
    clean, rows_in = cleaned(PRICES)

    failures = validate_clean(clean.drop(columns=["wifi"]), rows_in, EXPECTED, None).failures

    assert failures == ["column wifi is missing"]


def test_the_configured_expectations_reach_the_checks(tmp_path):
    path = tmp_path / "pipeline.yaml"
    grid = "train: {candidates: [{name: a, estimator: dummy, features: notebook}]}\n"
    path.write_text(grid + "validate: {min_rows: 5, ranges: {price: [20, 500]}}\n")

    expected = load_params(path).validation.expectations()

    assert expected.min_rows == 5
    assert expected.ranges == {"price": (20.0, 500.0)}
    assert expected.max_dropped_share == 0.2  # the default, as nothing else was said


@pytest.mark.parametrize(
    ("ranges", "named"),
    [
        ("{neighbourhood: [0, 1]}", "neighbourhood is not a numeric column"),
        ("{price: [500, 20]}", "price: lower bound 500.0 is above upper bound 20.0"),
    ],
)
def test_bad_expectations_are_a_config_error_naming_them(tmp_path, ranges, named):
    path = tmp_path / "pipeline.yaml"
    grid = "train: {candidates: [{name: a, estimator: dummy, features: notebook}]}\n"
    path.write_text(grid + f"validate: {{ranges: {ranges}}}\n")

    with pytest.raises(ConfigError, match=named):
        load_params(path)
