"""Realised prices as training rows: the joined feedback the monitor stores, turned into
cleaned listings and added to a dump's cleaned rows. Pure: frames in, frames out.

A price sent through POST /feedback that found its prediction carries the listing's fields
as the gateway validated them, so it is a listing with a known price, like a dump's row. Each
listing counts once, at its latest price, and replaces the dump's row of the same id (a newer,
realised price); prices cleaning would drop are dropped here too, each for a named reason, and
so are rows outside validate's ranges: a client may report a price of $25,000 or a listing
for 40 guests (the request contract's bounds are wider), and one such row must not fail every
run that trains on realised prices.
"""

import hashlib
import json
from dataclasses import dataclass, replace

import pandas as pd

from shared.cleaning import MIN_PRICE, CleanReport, categorize_prices
from shared.prediction_store import LISTING_COLUMNS
from shared.schema import AMENITY_FLAGS, FROM_FEEDBACK, PRICE_CATEGORIES, TARGET

# What training reads of the stored feedback, and all the monitor publishes of it.
TRAINING_COLUMNS = ["feedback_time", "problem", "price", *LISTING_COLUMNS]


@dataclass(frozen=True)
class StoredFeedback:
    """The joined feedback the monitor published (shared.feedback.FEEDBACK_SCHEMA), and the
    inclusive bounds validate holds every training row to (shared.params.ValidateParams)."""

    rows: pd.DataFrame
    ranges: dict[str, tuple[float, float]]


def training_rows(feedback: StoredFeedback) -> tuple[pd.DataFrame, dict[str, int]]:
    """Stored feedback as cleaned listings, in id order, and how many matched prices were left
    out, by reason."""
    matched = feedback.rows[_matched(feedback.rows)]
    latest = matched.sort_values("feedback_time", kind="stable").drop_duplicates("id", keep="last")
    cheap = latest["price"] <= MIN_PRICE
    left_out = {
        "feedback_superseded": len(matched) - len(latest),
        "feedback_price_at_most_10": int(cheap.sum()),
    }
    kept = latest[~cheap]
    for column, (low, high) in feedback.ranges.items():
        if column in kept:
            inside = kept[column].between(low, high) | kept[column].isna()
            left_out[f"feedback_{column}_outside_{low:g}_{high:g}"] = int((~inside).sum())
            kept = kept[inside]
    kept = kept.sort_values("id")
    rows = kept[list(LISTING_COLUMNS)].assign(price=kept["price"]).reset_index(drop=True)
    # Integers that may be missing: a request may leave an optional amenity flag out.
    rows = rows.astype({flag: "Int64" for flag in AMENITY_FLAGS})
    rows[TARGET] = categorize_prices(rows["price"])
    return rows, {reason: n for reason, n in left_out.items() if n}


def _matched(feedback: pd.DataFrame) -> pd.Series:
    """The prices that found their prediction (each an input row of the dataset)."""
    return feedback["problem"].isna() & feedback["id"].notna()


def with_feedback(
    clean: pd.DataFrame, report: CleanReport, feedback: StoredFeedback
) -> tuple[pd.DataFrame, CleanReport]:
    """A dump's cleaned rows plus the realised prices, each row marked by its origin, and the
    report counting both: every matched price is an input row, kept or dropped for a reason.

    Ids become text (a request's id may be any string, a dump's is a number), and amenity
    flags nullable integers: a request may leave an optional one out, and the models fill it
    as they do when predicting (shared.features)."""
    rows, left_out = training_rows(feedback)
    dump_ids = clean["id"].astype("string")
    replaced = dump_ids.isin(set(rows["id"]))
    combined = pd.concat(
        [
            clean[~replaced.to_numpy()].assign(id=dump_ids[~replaced], **{FROM_FEEDBACK: False}),
            rows.assign(**{FROM_FEEDBACK: True}),
        ],
        ignore_index=True,
    )
    dropped = dict(report.dropped) | left_out
    if replaced.any():
        dropped["replaced_by_feedback"] = int(replaced.sum())
    counts = combined[TARGET].value_counts()
    return combined, replace(
        report,
        rows_in=report.rows_in + int(_matched(feedback.rows).sum()),
        rows_out=len(combined),
        dropped=dropped,
        per_category={c: int(counts.get(c, 0)) for c in PRICE_CATEGORIES},
        feedback_rows=len(rows),
    )


def content_hash(raw_hash: str, feedback: StoredFeedback) -> str:
    """The data version of a dump cleaned with this feedback: its md5 and the rows the
    feedback gives (and leaves out), so that the same prices reuse the same cleaned data and
    one more price makes a new version."""
    rows, left_out = training_rows(feedback)
    digest = hashlib.md5(raw_hash.encode())
    digest.update(pd.util.hash_pandas_object(rows, index=False).to_numpy().tobytes())
    digest.update(json.dumps(left_out, sort_keys=True).encode())
    return digest.hexdigest()
