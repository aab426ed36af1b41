"""Logged models are loaded only in skops, with this code's trusted types: a model that would
run code as it loads is refused before anything of it is deserialized."""

import pickle
import shutil
from pathlib import Path

import pytest
import skops.io
import yaml

from shared.model_files import UntrustedModelError, load_trusted_model
from tests.golden.fixtures import FOLDER as GOLDEN


class WritesMarker:
    """Unpickled (or, if skops trusted it, loaded), it writes a file: code run from a model."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.marker,))


def model_folder(tmp_path: Path, serialization: str, file_name: str, **flavor: object) -> Path:
    """A folder as MLflow downloads a logged sklearn model: MLmodel beside the model file."""
    folder = tmp_path / "model"
    folder.mkdir()
    sklearn = {"serialization_format": serialization, "pickled_model": file_name, **flavor}
    (folder / "MLmodel").write_text(yaml.safe_dump({"flavors": {"sklearn": sklearn}}))
    return folder


def test_a_skops_model_of_trusted_types_loads(tmp_path: Path):
    folder = model_folder(tmp_path, "skops", "model.skops")
    shutil.copy(GOLDEN / "model.skops", folder / "model.skops")
    model = load_trusted_model(folder)
    assert list(model.classes_) == ["High", "Low", "Lux", "Mid"]


@pytest.mark.parametrize("serialization", ["pickle", "cloudpickle"])
def test_a_pickled_model_is_refused_and_never_unpickled(tmp_path: Path, serialization: str):
    marker = tmp_path / "ran"
    folder = model_folder(tmp_path, serialization, "model.pkl")
    (folder / "model.pkl").write_bytes(pickle.dumps(WritesMarker(marker)))
    with pytest.raises(UntrustedModelError, match=f"stored as '{serialization}', not skops"):
        load_trusted_model(folder)
    assert not marker.exists()


def test_types_the_model_itself_calls_trusted_are_refused(tmp_path: Path):
    marker = tmp_path / "ran"
    evil = f"{WritesMarker.__module__}.WritesMarker"
    # The model's own MLmodel lists its type as trusted (MLflow would believe it): ignored.
    folder = model_folder(tmp_path, "skops", "model.skops", skops_trusted_types=[evil])
    skops.io.dump({"estimator": WritesMarker(marker)}, folder / "model.skops")
    with pytest.raises(UntrustedModelError, match="does not trust"):
        load_trusted_model(folder)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("mlmodel", "message"),
    [
        (None, "not a scikit-learn model"),
        ("flavors: {python_function: {}}\n", "not a scikit-learn model"),
        ("flavors: {sklearn: {serialization_format: skops, pickled_model: ../x.skops}}\n",
         "outside the model"),
        ("[unclosed\n", "not a scikit-learn model"),
    ],
    ids=["no-MLmodel", "not-sklearn", "file-outside", "broken-yaml"],
)  # fmt: skip
def test_anything_else_is_refused_with_the_reason(tmp_path: Path, mlmodel, message):
    folder = tmp_path / "model"
    folder.mkdir()
    shutil.copy(GOLDEN / "model.skops", tmp_path / "x.skops")
    if mlmodel is not None:
        (folder / "MLmodel").write_text(mlmodel)
    with pytest.raises(UntrustedModelError, match=message):
        load_trusted_model(folder)
