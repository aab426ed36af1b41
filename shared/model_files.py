"""Loading a logged model without running code from it: skops only, this code's types only.

A registry anyone on the network can write to must not be able to run code in the gateway or
the workers. MLflow would load whatever serialization a model's MLmodel file names (pickle
included, which runs code as it loads) and trust whatever types that same file lists. Here the
format is checked before anything is read, and skops is given this code's own list of types.
"""

import tempfile
import zipfile
from pathlib import Path
from typing import Any

import mlflow.artifacts
import skops.io
import yaml
from mlflow.tracking import MlflowClient

# Types the logged pipelines reference beyond skops' defaults: our own feature transformer and
# the fitted tree structures of the estimators in modeling.ESTIMATORS (as
# skops.io.get_untrusted_types lists them). skops refuses to load anything else.
TRUSTED_TYPES = [
    "shared.features.ListingFeatures",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils.validation.check_array",
    "functools.partial",
    "lightgbm.sklearn.LGBMClassifier",
    "lightgbm.sklearn.LGBMRegressor",
    "shared.blend.PriceBlend",
    "lightgbm.basic.Booster",
    "collections.OrderedDict",
]


class UntrustedModelError(Exception):
    """A logged model this code will not load: not skops, or types it does not trust."""


def trusted_skops_file(model_dir: Path) -> bytes:
    """The skops file of a downloaded MLflow model folder, if the model is a scikit-learn one
    stored with skops; UntrustedModelError, before anything is deserialized, if not."""
    try:
        flavor = yaml.safe_load((model_dir / "MLmodel").read_text())["flavors"]["sklearn"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as error:
        raise UntrustedModelError(f"not a scikit-learn model logged by MLflow ({error})") from None
    serialization = flavor.get("serialization_format", "pickle")
    if serialization != "skops":
        raise UntrustedModelError(f"stored as {serialization!r}, not skops: refused")
    path = (model_dir / str(flavor.get("pickled_model", ""))).resolve()
    if not path.is_file() or not path.is_relative_to(model_dir.resolve()):
        raise UntrustedModelError("its skops file is missing or lies outside the model")
    return path.read_bytes()


def load_trusted_skops(data: bytes) -> Any:
    """A model saved by skops, if it uses only TRUSTED_TYPES; UntrustedModelError, before
    anything is deserialized, if not."""
    try:
        untrusted = sorted(set(skops.io.get_untrusted_types(data=data)) - set(TRUSTED_TYPES))
    except (zipfile.BadZipFile, ValueError, KeyError) as error:  # not a skops file at all
        raise UntrustedModelError(f"not a skops file ({error})") from None
    if untrusted:
        raise UntrustedModelError(f"uses types this code does not trust: {', '.join(untrusted)}")
    return skops.io.loads(data, trusted=TRUSTED_TYPES)


def load_trusted_model(model_dir: Path) -> Any:
    """The scikit-learn model in a downloaded MLflow model folder, if it is stored with skops
    and uses only TRUSTED_TYPES; UntrustedModelError, before anything is deserialized, if not."""
    return load_trusted_skops(trusted_skops_file(model_dir))


def stored_at(model_uri: str, client: MlflowClient) -> str:
    """Where the files of models:/<model id>, models:/<name>/<version> or models:/<name>@<alias>
    are stored, asked of this client's server. (MLflow resolves a models:/ URI through the
    process-wide registry URI, whatever server a download is given.)"""
    reference = model_uri.removeprefix("models:/")
    if "@" in reference:
        name, alias = reference.split("@", 1)
        version = client.get_model_version_by_alias(name, alias).version
        reference = f"{name}/{version}"
    if "/" in reference:
        name, version = reference.split("/", 1)
        location = client.get_model_version_download_uri(name, version)
        # A version made from a logged model may answer with that model's own URI.
        return stored_at(location, client) if location.startswith("models:/") else location
    return str(client.get_logged_model(reference).artifact_location)


def download_skops_file(model_uri: str, client: MlflowClient) -> bytes:
    """The skops file of a logged or registered model, downloaded from the client's server
    (checked as trusted_skops_file checks it, not loaded)."""
    with tempfile.TemporaryDirectory() as folder:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=stored_at(model_uri, client),
            dst_path=folder,
            tracking_uri=client.tracking_uri,
        )
        return trusted_skops_file(Path(local))


def load_logged_model(model_uri: str, client: MlflowClient) -> Any:
    """Download a logged or registered model from the client's server and load it as
    load_trusted_model does."""
    return load_trusted_skops(download_skops_file(model_uri, client))
