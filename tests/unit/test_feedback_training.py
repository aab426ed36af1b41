"""Realised prices as training rows: which become rows, how they join a dump's cleaned rows,
what the data version covers, and that the result passes the data checks."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow as pa

from services.workers.prep import clean_once
from shared.cleaning import clean_listings
from shared.contracts import CHALLENGE_EXAMPLE
from shared.feedback import FEEDBACK_SCHEMA, UNKNOWN
from shared.feedback_training import StoredFeedback, content_hash, training_rows, with_feedback
from shared.params import ValidateParams
from shared.schema import AMENITY_FLAGS, FROM_FEEDBACK, OPTIONAL_FLAGS, TARGET
from shared.validation import Expectations, validate_clean
from tests.unit.listings import raw_frame
from tests.unit.memory_datasets import MemoryDatasets

T0 = datetime(2026, 11, 30, 12, tzinfo=UTC)


def _price(listing_id: str, price: float, minutes: int = 0, problem=None, **fields) -> dict:
    """One stored feedback row: a price for the challenge's listing under another id."""
    listing = {**CHALLENGE_EXAMPLE, "id": listing_id, "property_type": None, **fields}
    return (
        {name: None for name in FEEDBACK_SCHEMA.names}
        | listing
        | {
            "feedback_id": f"f-{listing_id}-{minutes}",
            "feedback_time": T0 + timedelta(minutes=minutes),
            "prediction_id": f"p-{listing_id}-{minutes}",
            "price": price,
            "problem": problem,
            "price_category": "Low",  # what the model said: never the training label
        }
    )


def _feedback(*rows: dict) -> StoredFeedback:
    """As the prediction store reads it back (the stored schema's types), held to the default
    validate ranges."""
    frame = pa.Table.from_pylist(list(rows), schema=FEEDBACK_SCHEMA).to_pandas()
    return StoredFeedback(frame, ValidateParams().ranges)


def test_each_listing_is_one_row_at_its_latest_price_labelled_by_the_price():
    stored = _feedback(
        _price("a", 50, minutes=1),
        _price("a", 250, minutes=5),  # the latest: a's row
        _price("a", 70, minutes=3),
        _price("b", 95),
        _price("c", 8),  # a placeholder price, as cleaning drops from dumps
        _price("d", 300, problem=UNKNOWN, id=None),
    )
    rows, left_out = training_rows(stored)
    assert rows["id"].tolist() == ["a", "b"]
    assert rows["price"].tolist() == [250, 95]
    assert rows[TARGET].tolist() == ["High", "Mid"]
    assert left_out == {"feedback_superseded": 2, "feedback_price_at_most_10": 1}
    assert rows["accommodates"].tolist() == [4, 4]


def test_prices_and_listings_outside_the_validate_ranges_are_left_out_and_counted():
    """The contract takes 40 guests and $25,000 (validate's ranges stop at 30 and $20,000): one
    such price used to fail every run that trained on realised prices."""
    feedback = _feedback(_price("a", 25_000), _price("b", 150, accommodates=40), _price("c", 150))
    rows, left_out = training_rows(feedback)
    assert rows["id"].tolist() == ["c"]
    assert left_out == {
        "feedback_price_outside_10_20000": 1,
        "feedback_accommodates_outside_1_30": 1,
    }
    clean, report = clean_listings(raw_frame(*EVERY_CATEGORY))
    combined, combined_report = with_feedback(clean, report, feedback)
    assert combined_report.dropped["feedback_price_outside_10_20000"] == 1
    assert validate_clean(combined, combined_report.rows_in, _expectations(), None).passed


def test_realised_prices_join_the_dump_marked_and_replace_its_row_of_the_same_listing():
    clean, report = clean_listings(raw_frame({}, {}, {}))  # ids 1, 2, 3 at $275 (High)
    stored = _feedback(_price("2", 500), _price("x-9", 60), _price("x-9", 120, minutes=1))
    combined, described = with_feedback(clean, report, stored)

    assert combined["id"].tolist() == ["1", "3", "2", "x-9"]
    assert combined[FROM_FEEDBACK].tolist() == [False, False, True, True]
    assert combined[TARGET].tolist() == ["High", "High", "Lux", "Mid"]
    assert described.rows_in == 3 + 3  # every matched price is an input row
    assert described.rows_out == 4
    assert described.feedback_rows == 2
    assert described.dropped == {"replaced_by_feedback": 1, "feedback_superseded": 1}
    assert described.rows_in - sum(described.dropped.values()) == described.rows_out
    assert described.per_category == {"Low": 0, "Mid": 1, "High": 2, "Lux": 1}
    assert report.feedback_rows == 0  # the dump's own report is left as it was


def _expectations() -> Expectations:
    return Expectations(
        ranges={},
        min_rows=1,
        max_dropped_share=0.9,
        max_category_shift=1.0,
        max_row_change=1.0,
        min_category_rows=1,
    )


# One listing of each category: data every check but the one under test accepts.
EVERY_CATEGORY = tuple({"price": price} for price in ("$50.00", "$150.00", "$300.00", "$900.00"))


def test_a_left_out_optional_flag_passes_the_data_checks_only_in_a_realised_price():
    clean, report = clean_listings(raw_frame(*EVERY_CATEGORY))
    combined, _ = with_feedback(clean, report, _feedback(_price("z", 150)))
    realised = combined.index[combined["id"] == "z"][0]
    rows_in = len(combined)
    assert combined.loc[realised, list(OPTIONAL_FLAGS)].isna().all()
    assert validate_clean(combined, report.rows_in, _expectations(), None).passed

    dump_row_lacking = combined.copy()
    dump_row_lacking.loc[0, "kitchen"] = pd.NA
    assert (
        "column kitchen lacks 1 value(s)"
        in validate_clean(dump_row_lacking, rows_in, _expectations(), None).failures
    )
    required = next(flag for flag in AMENITY_FLAGS if flag not in OPTIONAL_FLAGS)
    request_lacking_required = combined.copy()
    request_lacking_required.loc[realised, required] = pd.NA
    assert (
        f"column {required} lacks 1 value(s)"
        in validate_clean(request_lacking_required, rows_in, _expectations(), None).failures
    )


def test_the_data_version_covers_the_prices_and_reuses_the_same_ones(tmp_path):
    raw = tmp_path / "listings.csv"
    raw_frame({}, {}).to_csv(raw, index=False)
    prices = [_price("a", 150), _price("b", 95)]
    datasets = MemoryDatasets()

    plain = clean_once(datasets, raw, None, {})
    first = clean_once(datasets, raw, _feedback(*prices), {})
    again = clean_once(datasets, raw, _feedback(*reversed(prices)), {})
    more = clean_once(datasets, raw, _feedback(*prices, _price("c", 420)), {})
    plain_hash, first_hash, more_hash = plain.data_hash, first.data_hash, more.data_hash
    dataset, report = first.dataset, first.report
    assert not first.reused and again.reused

    assert plain.report.feedback_rows == 0 and plain_hash != first_hash
    assert (again.data_hash, again.dataset) == (first_hash, dataset)  # same prices, same version
    assert more_hash not in (plain_hash, first_hash) and more.report.feedback_rows == 3
    assert len(datasets.logged) == 3  # cleaned once per version
    stored = datasets.logged[dataset.run_id][1]
    assert stored[FROM_FEEDBACK].sum() == report.feedback_rows == 2
    assert first_hash == content_hash(plain_hash, _feedback(*prices))


def test_a_placeholder_price_changes_the_version_though_it_adds_no_row():
    # The report counts it as dropped: the same version must not describe two reports.
    base = content_hash("0" * 32, _feedback(_price("a", 150)))
    assert content_hash("0" * 32, _feedback(_price("a", 150), _price("b", 10))) != base
