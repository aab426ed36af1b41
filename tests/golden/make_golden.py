"""Rebuild the golden fixtures: `python -m tests.golden.make_golden`, then commit them.

A small LightGBM pipeline trained on the shipped data, a dozen listings (test-split rows and
request-shaped ones with optional fields left out) and the probabilities it gives them.
Tests check that every path that serves this model gives exactly these numbers.
"""

import json
from pathlib import Path

import pandas as pd
import skops.io

from shared.cleaning import clean_listings
from shared.contracts import CHALLENGE_EXAMPLE
from shared.modeling import CandidateSpec, fit_candidate, probabilities
from shared.settings import PROJECT_DIR
from shared.splitting import SplitRule
from shared.storage import read_raw_listings

FOLDER = Path(__file__).parent
SPEC = CandidateSpec(
    "golden", "lightgbm", "all", {"n_estimators": 30, "random_state": 0, "verbose": -1}
)


def main() -> None:
    clean, _ = clean_listings(read_raw_listings(PROJECT_DIR / "data/raw/listings.csv.gz"))
    split = SplitRule("golden", 0.15).split(clean)
    pipeline, _ = fit_candidate(SPEC, split)
    rows = split.x_test.head(10).astype(object).where(split.x_test.head(10).notna(), None)
    listings = [
        {k: (int(v) if k in ("id", "accommodates") else v) for k, v in row.items()}
        for row in rows.to_dict(orient="records")
    ]
    for listing in listings:  # the model's inputs, as a request sends them
        listing.update({k: int(listing[k]) for k in ("beds", "bedrooms")})
    listings += [
        CHALLENGE_EXAMPLE,
        {
            **CHALLENGE_EXAMPLE,
            "id": 1002,
            "kitchen": 1,
            "wifi": True,
            "property_type": "Entire loft",
        },
    ]
    proba = probabilities(pipeline, pd.DataFrame(listings))
    expected = [
        {
            "id": listing["id"],
            "price_category": proba.iloc[i].idxmax(),
            "probabilities": proba.iloc[i].to_dict(),
        }
        for i, listing in enumerate(listings)
    ]
    (FOLDER / "model.skops").write_bytes(skops.io.dumps(pipeline))
    (FOLDER / "listings.json").write_text(json.dumps(listings, indent=1) + "\n")
    (FOLDER / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")


if __name__ == "__main__":
    main()
