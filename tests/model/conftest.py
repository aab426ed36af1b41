"""The default grid trained once on the shipped data, shared by the model tests."""

import pandas as pd
import pytest

from shared.cleaning import clean_listings
from shared.modeling import fit_candidate, score_on_test
from shared.params import PipelineParams, load_params
from shared.selection import pick_winner
from shared.settings import PROJECT_DIR
from shared.splitting import Split
from shared.storage import read_raw_listings


@pytest.fixture(scope="session")
def params() -> PipelineParams:
    return load_params(PROJECT_DIR / "config" / "pipeline.yaml")


@pytest.fixture(scope="session")
def clean() -> pd.DataFrame:
    return clean_listings(read_raw_listings(PROJECT_DIR / "data/raw/listings.csv.gz"))[0]


@pytest.fixture(scope="session")
def default_split(params, clean) -> Split:
    return params.split.rule().split(clean)


@pytest.fixture(scope="session")
def grid_results(params, default_split) -> dict:
    """name -> (pipeline, test metrics) for every candidate of the default grid."""
    results = {}
    for candidate in params.train.candidates:
        pipeline, _ = fit_candidate(candidate.spec(), default_split)
        metrics = score_on_test(pipeline, default_split)
        results[candidate.name] = (pipeline, metrics)
    return results


@pytest.fixture(scope="session")
def champion(params, grid_results):
    """The candidate the select step would register: best by the configured metric."""
    name = pick_winner({n: m for n, (_, m) in grid_results.items()}, params.select.metric)
    return name, *grid_results[name]
