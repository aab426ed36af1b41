"""What produced a model: the code's git commit and the versions of the libraries used."""

import hashlib
import json
import os
import subprocess
from functools import cache
from importlib import metadata
from typing import Any

from shared.settings import PROJECT_DIR

TRACKED_LIBRARIES = (
    "scikit-learn",
    "lightgbm",
    "pandas",
    "numpy",
    "mlflow",
    "shap",
    "skops",
    "rq",
    "redis",
)

# What loading a logged model needs. Given to MLflow rather than inferred: its inference runs
# a subprocess that loads the model (3-4 s per candidate) and here listed pytest, not lightgbm.
MODEL_REQUIREMENTS = (
    "mlflow",
    "scikit-learn",
    "lightgbm",
    "pandas",
    "numpy",
    "scipy",
    "skops",
    "price-category",  # this project: the ListingFeatures step lives in shared.features
)


def git_commit() -> str:
    """The commit of the running code: GIT_COMMIT when set (images), else asked of git."""
    if commit := os.environ.get("GIT_COMMIT"):
        return commit
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=PROJECT_DIR,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip() or "unknown"


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries a model's behaviour depends on."""
    versions = {}
    for name in TRACKED_LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def model_requirements() -> list[str]:
    """Pinned pip requirements of a logged model, from the installed versions."""
    return [f"{name}=={metadata.version(name)}" for name in MODEL_REQUIREMENTS]


def provenance_tags() -> dict[str, str]:
    """The code's commit and library versions, as the tags runs and model versions carry."""
    return {"git_commit": git_commit(), **{f"lib.{n}": v for n, v in library_versions().items()}}


@cache
def source_hash() -> str:
    """md5 of the shared package's sources: the code that turns raw data into a model. Unlike
    the git commit it sees uncommitted edits, and it exists where .git does not (images)."""
    digest = hashlib.md5(usedforsecurity=False)
    for path in sorted((PROJECT_DIR / "shared").glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def model_fingerprint(data_hash: str, training: dict[str, Any]) -> str:
    """What a model is made of: data, code, parameters and libraries. Two versions with the
    same fingerprint are the same model trained twice."""
    document = {
        "data_hash": data_hash,
        "code": source_hash(),
        "training": training,
        "libraries": library_versions(),
    }
    encoded = json.dumps(document, sort_keys=True, default=str).encode()
    return hashlib.md5(encoded, usedforsecurity=False).hexdigest()
