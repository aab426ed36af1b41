"""A gateway over a small in-memory model: no Redis, no MLflow, milliseconds per test."""

from pathlib import Path

import pytest

from services.gateway.app import create_app
from services.gateway.champion import LoadedModel
from shared.cleaning import clean_listings
from shared.modeling import CandidateSpec, fit_candidate
from shared.settings import Settings
from shared.splitting import SplitRule
from tests.unit.listings import raw_frame

PRICES = ["$50.00", "$150.00", "$300.00", "$900.00"]


@pytest.fixture(scope="session")
def small_pipeline():
    rows = [
        {"price": PRICES[i % 4], "accommodates": 1 + (i % 4) * 2, "bedrooms": float(i % 4),
         "latitude": 40.70 + 0.001 * i}
        for i in range(80)
    ]  # fmt: skip
    clean, _ = clean_listings(raw_frame(*rows))
    split = SplitRule("unit", 0.2).split(clean)
    spec = CandidateSpec("small", "hist_gradient_boosting", "all", {"max_iter": 10})
    return fit_candidate(spec, split)[0]


class FakeSource:
    """Champions handed out by the test: version and pipeline set directly."""

    def __init__(self, pipeline) -> None:
        self.pipeline = pipeline
        self.version: str | None = "7"
        self.fail_with: Exception | None = None

    def alias_version(self) -> str | None:
        if self.fail_with:
            raise self.fail_with
        return self.version

    def load(self, version: str) -> LoadedModel:
        return LoadedModel(version, self.pipeline, {"version": version, "run_id": None})

    def importances(self, run_id: str):
        return None


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        redis_url="redis://127.0.0.1:9/0",  # nothing listens: these tests must not need Redis
        mlflow_tracking_uri="http://127.0.0.1:9",
        max_batch=3,
        max_explain_batch=2,
        max_body_bytes=4096,
        retrain_token="s3cret-token-0123456789",
        dashboard_user="admin",
        dashboard_password="dashboard-pw-0123456789",
        compiled_trees=False,  # gcc has no place in unit tests (tests/integration: compiled)
    )


@pytest.fixture
def source(small_pipeline) -> FakeSource:
    return FakeSource(small_pipeline)


@pytest.fixture
def app(settings, source):
    app = create_app(settings, source=source, watch_champion=False)
    app.extensions["gateway"].cache.refresh()
    return app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def threads_used(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The threads each prediction the gateway makes is given, in order."""
    from services.gateway import predicting

    used: list[int] = []
    predict = predicting.predict_matrix

    def counting(pipeline, records, threads=1):
        used.append(threads)
        return predict(pipeline, records, threads)

    monkeypatch.setattr(predicting, "predict_matrix", counting)
    return used
