"""Trackers and registries change nothing process-wide and ask the server nothing until used."""

import os

import mlflow
import pytest

from shared.contracts import Listing
from shared.registry import Registry
from shared.schema import OPTIONAL_FLAGS
from shared.settings import Settings
from shared.tracking import Tracker, input_schema, tracking_uri

NOBODY = "http://127.0.0.1:9"  # nothing listens there


@pytest.fixture
def no_global_uri(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # a request would fail at once
    mlflow.set_tracking_uri(None)
    yield
    mlflow.set_tracking_uri(None)


def test_making_them_sets_no_global_uri_and_asks_the_server_nothing(no_global_uri):
    default = mlflow.get_tracking_uri()

    tracker, registry = Tracker(Settings(mlflow_tracking_uri=NOBODY)), Registry(Settings())

    assert mlflow.get_tracking_uri() == default
    assert not mlflow.is_tracking_uri_set()
    assert "MLFLOW_TRACKING_URI" not in os.environ
    assert tracker.client.tracking_uri == NOBODY
    assert registry.name == "price-category"


def test_the_uri_model_logging_needs_is_put_back_as_it_was(no_global_uri):
    with tracking_uri(NOBODY):
        assert mlflow.get_tracking_uri() == NOBODY
        assert os.environ["MLFLOW_TRACKING_URI"] == NOBODY  # what MLflow's logging reads
    assert not mlflow.is_tracking_uri_set()
    assert "MLFLOW_TRACKING_URI" not in os.environ

    mlflow.set_tracking_uri("http://127.0.0.1:8")
    with tracking_uri(NOBODY):
        pass
    assert mlflow.get_tracking_uri() == "http://127.0.0.1:8"


def test_the_logged_model_s_input_schema_follows_the_request_contract():
    columns = {c["name"]: (c["type"], c["required"]) for c in input_schema().to_dict()}

    assert columns == {
        "neighbourhood": ("string", True),
        "room_type": ("string", True),
        "property_type": ("string", False),
        "accommodates": ("long", True),
        "bathrooms": ("double", True),  # halves allowed
        "bedrooms": ("long", True),
        "beds": ("long", True),
        "latitude": ("double", True),
        "longitude": ("double", True),
        "tv": ("long", True),
        "elevator": ("long", True),
        "internet": ("long", True),
        # Absent from some listings of a batch (NaN there), 0/1 in others: any type.
        **dict.fromkeys(OPTIONAL_FLAGS, ("any", False)),
    }
    assert set(columns) == set(Listing.model_fields) - {"id"}


class RecordingTracker(Tracker):
    """create_run and end_run recorded instead of asked of a server."""

    def __init__(self) -> None:
        super().__init__(Settings(mlflow_tracking_uri=NOBODY))
        self.ended: list[tuple[str, str]] = []

    def create_run(self, kind: str, name: str, tags: dict[str, str]) -> str:
        return f"{kind}-run"

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        self.ended.append((run_id, status))


def test_a_complete_run_finishes_only_when_its_block_did():
    tracker = RecordingTracker()
    with tracker.complete_run("dataset", "d", {}) as run_id:
        assert tracker.ended == []  # still open while the block logs
    assert tracker.ended == [(run_id, "FINISHED")]

    failing = RecordingTracker()
    with pytest.raises(OSError, match="upload cut"), failing.complete_run("dataset", "d", {}):
        raise OSError("upload cut")
    assert failing.ended == [("dataset-run", "FAILED")]
