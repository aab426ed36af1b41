"""The served model in the MLflow registry: its versions, their tags and the champion alias."""

import json
import time
from typing import Any

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import ALREADY_EXISTS, RESOURCE_ALREADY_EXISTS, ErrorCode
from mlflow.tracking import MlflowClient

from shared.lifecycle import PIN_TAG, Event, event_tag, history
from shared.model_files import download_skops_file, load_logged_model
from shared.settings import Settings

# The logged model's tag listing the registry versions made from it (MLflow's UI reads it).
MODEL_VERSIONS_TAG = "mlflow.modelVersions"


class Registry:
    """Registers versions of the served model and moves its champion alias.

    Talks to the server named by the settings only, through a client of its own: nothing
    process-wide is set, and nothing is asked of the server until a method is called.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.name = settings.model_name
        self.client = MlflowClient(settings.mlflow_tracking_uri)

    def _versions_of_run(self, pipeline_run_id: str) -> list[ModelVersion]:
        """The versions registered for a pipeline run, oldest first (one, unless a retried
        registration left a second)."""
        query = f"name = '{self.name}' and tags.pipeline_run_id = '{pipeline_run_id}'"
        return sorted(self.client.search_model_versions(query), key=lambda v: int(v.version))

    def version_of_run(self, pipeline_run_id: str) -> ModelVersion | None:
        """The version a pipeline run registered, so a repeated select registers nothing new."""
        versions = self._versions_of_run(pipeline_run_id)
        return versions[0] if versions else None

    def _create_version(self, model_uri: str, tags: dict[str, str]) -> ModelVersion:
        """A new version of a logged model (models:/<model id>), as mlflow.register_model
        makes one, but through this registry's own client."""
        try:
            self.client.create_registered_model(self.name)
        except MlflowException as error:
            if error.error_code not in (
                ErrorCode.Name(RESOURCE_ALREADY_EXISTS),
                ErrorCode.Name(ALREADY_EXISTS),
            ):
                raise
        model_id = model_uri.removeprefix("models:/")
        created = self.client.create_model_version(
            self.name, source=model_uri, tags=tags, model_id=model_id
        )
        logged = self.client.get_logged_model(model_id)
        listed = json.loads(logged.tags.get(MODEL_VERSIONS_TAG, "[]"))
        listed.append({"name": self.name, "version": created.version})
        self.client.set_logged_model_tags(model_id, {MODEL_VERSIONS_TAG: json.dumps(listed)})
        return created

    def register(self, model_uri: str, tags: dict[str, str]) -> ModelVersion:
        """Register a logged model as a new version of the served model, exactly once per
        pipeline run (tags["pipeline_run_id"]): MLflow's client retries a POST whose reply was
        lost, which can create a second version; the extra ones are deleted, the first kept."""
        created = self._create_version(model_uri, tags)
        if "pipeline_run_id" not in tags:  # registered by hand: no run to keep it unique to
            return created
        versions = self._versions_of_run(tags["pipeline_run_id"])
        for extra in versions[1:]:
            self.client.delete_model_version(self.name, extra.version)
        return versions[0]

    def version(self, version: str) -> ModelVersion:
        return self.client.get_model_version(self.name, version)

    def promoted_versions(self) -> list[ModelVersion]:
        """Every version the gate promoted, newest first."""
        query = f"name = '{self.name}' and tags.decision = 'promoted'"
        return sorted(self.client.search_model_versions(query), key=lambda v: -int(v.version))

    def by_alias(self, alias: str) -> ModelVersion | None:
        """The version an alias points at, or None when it points at none."""
        try:
            return self.client.get_model_version_by_alias(self.name, alias)
        except MlflowException:
            return None

    def champion(self) -> ModelVersion | None:
        """The version holding the champion alias, or None before the first promotion."""
        return self.by_alias(self.settings.champion_alias)

    def load_version(self, version: str) -> Any:
        """A version's pipeline, loaded as shared.model_files allows (skops, trusted types)."""
        return load_logged_model(f"models:/{self.name}/{version}", self.client)

    def version_skops_file(self, version: str) -> bytes:
        """A version's skops file as stored (checked as load_version checks it, not loaded)."""
        return download_skops_file(f"models:/{self.name}/{version}", self.client)

    def tag_version(self, version: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(self.name, version, key, value)

    def promote(self, version: str) -> None:
        """Point the champion alias at a version."""
        self.client.set_registered_model_alias(self.name, self.settings.champion_alias, version)

    def challenger(self) -> ModelVersion | None:
        """The version tried beside the champion on live traffic, or None."""
        return self.by_alias(self.settings.challenger_alias)

    def set_challenger(self, version: str | None) -> None:
        """Point the challenger alias at a version, or remove it (None)."""
        alias = self.settings.challenger_alias
        if version is not None:
            self.client.set_registered_model_alias(self.name, alias, version)
        elif self.challenger() is not None:
            self.client.delete_registered_model_alias(self.name, alias)

    def history(self) -> list[Event]:
        """Every promotion, rollback and pin, newest first (shared.lifecycle)."""
        try:
            versions = self.client.search_model_versions(f"name = '{self.name}'")
        except MlflowException as error:
            if error.error_code == "RESOURCE_DOES_NOT_EXIST":  # nothing registered yet
                return []
            raise
        return history(versions)

    def record(self, event: Event) -> None:
        """Keep an event made by hand (a rollback, a pin) with the version it concerns."""
        key, value = event_tag(event, time.time_ns())
        self.client.set_model_version_tag(self.name, event.version, key, value)

    def pin(self) -> dict[str, Any] | None:
        """The pin in force (at, reason, by), or None: while pinned, the gate moves nothing."""
        try:
            tags = self.client.get_registered_model(self.name).tags
        except MlflowException as error:
            if error.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
        return json.loads(tags[PIN_TAG]) if PIN_TAG in tags else None

    def set_pin(self, pin: dict[str, Any] | None) -> None:
        """Pin (a dict saying when, why and by whom) or lift the pin (None)."""
        if pin is not None:
            self.client.set_registered_model_tag(self.name, PIN_TAG, json.dumps(pin))
        elif self.pin() is not None:
            self.client.delete_registered_model_tag(self.name, PIN_TAG)
