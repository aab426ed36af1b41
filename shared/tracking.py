"""The one home of MLflow tracking: pipeline and child runs, logged models, artifacts.

The registry and its champion alias are shared.registry's."""

import json
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from mlflow.entities import Metric, Param, Run, RunStatus
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.tracking import MlflowClient
from mlflow.types import ColSpec, Schema, TensorSpec
from mlflow.types.schema import AnyType
from sklearn.pipeline import Pipeline

from shared.contracts import CHALLENGE_EXAMPLE, Listing
from shared.errors import DataError
from shared.model_files import TRUSTED_TYPES, load_logged_model
from shared.provenance import model_requirements
from shared.schema import MODEL_INPUTS, OPTIONAL_FLAGS
from shared.selection import FinishedCandidate, finished_candidates
from shared.settings import Settings
from shared.storage import file_sha256

PARENT_TAG = "mlflow.parentRunId"
# JSON Schema's types as MLflow's: it refuses to widen int64 to float64, so whole numbers are
# longs.
_MLFLOW_TYPES = {"integer": "long", "number": "double", "string": "string"}


def input_schema() -> Schema:
    """What the logged model accepts, derived from the request contract (shared.contracts)
    rather than inferred from a sample: its optional fields are optional. `id` is not an
    input: the model never reads it."""
    contract = Listing.model_json_schema()
    columns: list[ColSpec | TensorSpec] = []
    for name in MODEL_INPUTS:
        if name in OPTIONAL_FLAGS:  # absent in some listings of a batch (NaN, a float)
            columns.append(ColSpec(AnyType(), name, required=False))
            continue
        field = contract["properties"][name]
        kinds = [option["type"] for option in field.get("anyOf", [field])]
        kind = next(_MLFLOW_TYPES[k] for k in kinds if k != "null")
        columns.append(ColSpec(kind, name, required=name in contract["required"]))
    return Schema(columns)


# The tag naming a candidate run's logged model, once it is logged.
MODEL_URI_TAG = "model_uri"
# Where the explain stage leaves mean |SHAP| per class on the winner's run.
IMPORTANCES_ARTIFACT = "explain/importances.json"
# The winner's training data as drift checks see it (shared.drift.reference_profile).
DRIFT_REFERENCE_ARTIFACT = "monitoring/drift_reference.json"


def delete_artifacts(client: MlflowClient, run_id: str, path: str | None = None) -> None:
    """Delete a run's artifacts under path (all without one); nothing there is no error."""
    artifact_uri = client.get_run(run_id).info.artifact_uri
    get_artifact_repository(artifact_uri, tracking_uri=client.tracking_uri).delete_artifacts(path)


@contextmanager
def tracking_uri(uri: str) -> Iterator[None]:
    """MLflow's model logging reads the process-wide tracking URI (and sets the environment's
    MLFLOW_TRACKING_URI with it): set only for that call, then put back as it was."""
    was_set, previous = mlflow.is_tracking_uri_set(), mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous if was_set else None)  # type: ignore[arg-type]


class Tracker:
    """Logs one pipeline run's runs, models and artifacts to the MLflow tracking server."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = MlflowClient(settings.mlflow_tracking_uri)

    @cached_property
    def experiment_id(self) -> str:
        """The experiment runs are logged to, created on first use."""
        experiment = self.client.get_experiment_by_name(self.settings.experiment_name)
        if experiment is not None:
            return str(experiment.experiment_id)
        return self._create_experiment(self.settings.experiment_name)

    def _create_experiment(self, name: str) -> str:
        try:
            return self.client.create_experiment(name)
        except MlflowException:  # another worker created it first
            experiment = self.client.get_experiment_by_name(name)
            if experiment is None:
                raise
            return str(experiment.experiment_id)

    def find_runs(self, pipeline_run_id: str, kind: str, extra: str = "") -> list[Run]:
        """Runs of one kind (pipeline, data-quality, candidate) of a pipeline run, newest first."""
        query = f"tags.pipeline_run_id = '{pipeline_run_id}' and tags.kind = '{kind}'" + extra
        return list(self.client.search_runs([self.experiment_id], filter_string=query))

    def find_runs_of_kind(self, kind: str) -> list[Run]:
        """Every run of a kind outside pipeline runs (realised-prices, ...), newest first."""
        query = f"tags.kind = '{kind}'"
        return list(self.client.search_runs([self.experiment_id], filter_string=query))

    def ensure_pipeline_run(self, pipeline_run_id: str, tags: dict[str, str]) -> str:
        """The parent run of a pipeline run, created on first call and reused on retries."""
        existing = self.find_runs(pipeline_run_id, "pipeline")
        if existing:
            return existing[0].info.run_id
        run = self.client.create_run(
            self.experiment_id,
            run_name=f"pipeline-{pipeline_run_id[:8]}",
            tags={**tags, "pipeline_run_id": pipeline_run_id, "kind": "pipeline"},
        )
        return run.info.run_id

    def create_run(self, kind: str, name: str, tags: dict[str, str]) -> str:
        """A run of its own, outside any pipeline run (a drift check's report)."""
        run = self.client.create_run(
            self.experiment_id, run_name=name, tags={**tags, "kind": kind, "name": name}
        )
        return run.info.run_id

    @contextmanager
    def complete_run(self, kind: str, name: str, tags: dict[str, str]) -> Iterator[str]:
        """create_run for the block, FINISHED once it ends and FAILED if it raises: readers
        that take only finished runs never see half of what the block logs."""
        run_id = self.create_run(kind, name, tags)
        try:
            yield run_id
        except BaseException:
            self.end_run(run_id, "FAILED")
            raise
        self.end_run(run_id)

    def start_child_run(
        self,
        parent_run_id: str,
        pipeline_run_id: str,
        kind: str,
        name: str,
        tags: dict[str, str] | None = None,
    ) -> str:
        """A child run under the pipeline run; a half-logged earlier attempt is marked failed."""
        for stale in self.find_runs(pipeline_run_id, kind, f" and tags.name = '{name}'"):
            if stale.info.status == "RUNNING":
                self.client.set_terminated(stale.info.run_id, "FAILED")
        run = self.client.create_run(
            self.experiment_id,
            run_name=name,
            tags={
                **(tags or {}),
                PARENT_TAG: parent_run_id,
                "pipeline_run_id": pipeline_run_id,
                "kind": kind,
                "name": name,
            },
        )
        return run.info.run_id

    def finished_child_run(self, pipeline_run_id: str, kind: str, name: str) -> Run | None:
        """A child run of this kind and name that completed in an earlier attempt."""
        runs = self.find_runs(pipeline_run_id, kind, f" and tags.name = '{name}'")
        finished = [r for r in runs if r.info.status == "FINISHED"]
        return finished[0] if finished else None

    def log_values(
        self, run_id: str, params: Mapping[str, Any], metrics: Mapping[str, float]
    ) -> None:
        """Log parameters and metrics to a run in one call."""
        stamp = int(time.time() * 1000)
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), stamp, 0) for k, v in metrics.items()],
            params=[Param(k, str(v)[:6000]) for k, v in params.items()],
        )

    def log_model(self, run_id: str, pipeline: Pipeline) -> str:
        """Log a fitted pipeline (request fields to probabilities) with the request contract as
        its signature and the challenge's example as its input example; returns its URI."""
        example = pd.DataFrame([CHALLENGE_EXAMPLE]).drop(columns=["id"])
        # Derived when a model is logged, not at import: workers and the gateway import this.
        output = Schema([TensorSpec(np.dtype("float64"), (-1, 4))])
        signature = ModelSignature(input_schema(), output)
        # Linked to the run by id, not through a fluent (active) run: the run's status stays
        # as it is, so a logging cut short never leaves a finished candidate RUNNING or FAILED.
        with tracking_uri(self.settings.mlflow_tracking_uri):
            info = mlflow.sklearn.log_model(
                pipeline,
                name="model",
                run_id=run_id,
                signature=signature,
                input_example=example,
                pyfunc_predict_fn="predict_proba",
                serialization_format="skops",  # load_model refuses any other
                skops_trusted_types=TRUSTED_TYPES,
                metadata={"labels": list(pipeline.classes_)},
                pip_requirements=model_requirements(),
            )
        self.client.set_tag(run_id, MODEL_URI_TAG, info.model_uri)
        return info.model_uri

    def finished_candidates(
        self, pipeline_run_id: str, names: list[str]
    ) -> dict[str, FinishedCandidate]:
        """The finished training run of every named candidate of a pipeline run, in order."""
        runs = self.find_runs(pipeline_run_id, "candidate", " and attributes.status = 'FINISHED'")
        return finished_candidates(runs, names, MODEL_URI_TAG)

    def ensure_model_logged(
        self, candidate: FinishedCandidate, staged: Callable[[], Pipeline]
    ) -> str:
        """The candidate's model URI: its staged model (loaded by staged()) logged to its run,
        unless an earlier try did so already."""
        if candidate.model_uri:
            return candidate.model_uri
        return self.log_model(candidate.run_id, staged())

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        """Close a run (FINISHED or FAILED) unless it is closed already."""
        if self.client.get_run(run_id).info.status == RunStatus.to_string(RunStatus.RUNNING):
            self.client.set_terminated(run_id, status)

    def delete_artifacts(self, run_id: str, path: str | None = None) -> None:
        """Delete a run's artifacts under path (all of them without one), through the server."""
        return delete_artifacts(self.client, run_id, path)

    def log_dict(self, run_id: str, document: dict[str, Any], artifact_file: str) -> None:
        self.client.log_dict(run_id, document, artifact_file)

    def log_figure(self, run_id: str, figure: Figure, artifact_file: str) -> None:
        self.client.log_figure(run_id, figure, artifact_file)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self.client.log_text(run_id, text, artifact_file)

    def download_checked(self, run_id: str, artifact: str, sha256: str, folder: Path) -> Path:
        """An artifact downloaded into folder, refused (DataError) unless its SHA-256 is the one
        recorded when it was logged (shared.ledger)."""
        fetched = Path(self.client.download_artifacts(run_id, artifact, str(folder)))
        if file_sha256(fetched) != sha256:
            raise DataError(
                f"{artifact} of MLflow run {run_id} is not the file logged there (its SHA-256 "
                "differs from the one recorded): refused"
            )
        return fetched

    def load_dict(self, run_id: str, artifact_file: str) -> dict[str, Any]:
        """Read back a JSON artifact logged with log_dict."""
        with tempfile.TemporaryDirectory() as folder:
            path = self.client.download_artifacts(run_id, artifact_file, folder)
            return dict(json.loads(Path(path).read_text()))

    def load_model(self, model_uri: str) -> Pipeline:
        """Load a logged pipeline: only one stored with skops, using only the types this code
        trusts (UntrustedModelError otherwise, and nothing of it deserialized)."""
        return load_logged_model(model_uri, self.client)  # type: ignore[no-any-return]

    def run_metrics(self, run_id: str) -> dict[str, float]:
        return dict(self.client.get_run(run_id).data.metrics)
