"""Rebuild the golden fixtures: `python -m tests.golden.make_golden`, then commit them.

Two small pipelines trained on the shipped data (LightGBM; a classifier-regressor blend), a
dozen listings (test-split rows and request-shaped ones with optional fields left out) and the
probabilities (and the blend's prices) each gives them. Tests check that every path that serves
these models gives exactly these numbers.
"""

import json
from pathlib import Path

import pandas as pd
import skops.io

from shared.cleaning import clean_listings
from shared.contracts import CHALLENGE_EXAMPLE
from shared.modeling import CandidateSpec, fit_candidate, predict_matrix
from shared.schema import PRICE_CATEGORIES
from shared.settings import PROJECT_DIR
from shared.splitting import Split, SplitRule
from shared.storage import read_raw_listings
from tests.golden.fixtures import KINDS

FOLDER = Path(__file__).parent
_SMALL = {"n_estimators": 30, "random_state": 0, "verbose": -1}
SPECS = {
    "lightgbm": CandidateSpec("golden", "lightgbm", "all", _SMALL),
    "price_blend": CandidateSpec(
        "golden_blend",
        "price_blend",
        "all",
        {"classifier_params": _SMALL, "regressor_params": _SMALL, "folds": 3},
    ),
}


def main() -> None:
    clean, _ = clean_listings(read_raw_listings(PROJECT_DIR / "data/raw/listings.csv.gz"))
    split = SplitRule("golden", 0.15).split(clean)
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
    (FOLDER / "listings.json").write_text(json.dumps(listings, indent=1) + "\n")
    for kind, suffix in KINDS.items():
        write_golden(split, listings, SPECS[kind], suffix)


def write_golden(split: Split, listings: list[dict], spec: CandidateSpec, suffix: str) -> None:
    """Fit one golden model and write it with the answers it gives the listings."""
    pipeline, _ = fit_candidate(spec, split)
    proba, prices = predict_matrix(pipeline, pd.DataFrame(listings))
    expected = []
    for i, listing in enumerate(listings):
        answer = {
            "id": listing["id"],
            "price_category": PRICE_CATEGORIES[proba[i].argmax()],
            "probabilities": dict(zip(PRICE_CATEGORIES, proba[i].tolist(), strict=True)),
        }
        if prices is not None:
            answer["estimated_price"] = prices[i, 0].item()
            answer["price_interval"] = prices[i, 1:].tolist()
        expected.append(answer)
    (FOLDER / f"model{suffix}.skops").write_bytes(skops.io.dumps(pipeline))
    (FOLDER / f"expected{suffix}.json").write_text(json.dumps(expected, indent=1) + "\n")


if __name__ == "__main__":
    main()
