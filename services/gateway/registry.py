"""Champions from the MLflow registry: the alias's version, its pipeline and its record."""

import logging
from typing import Any

import pandas as pd
from mlflow.exceptions import MlflowException

from services.gateway.champion import LoadedModel
from services.gateway.champion_copy import ChampionCopy
from shared.contracts import CHALLENGE_EXAMPLE
from shared.model_files import load_trusted_skops
from shared.modeling import probabilities
from shared.probes import mlflow_answers
from shared.registry import Registry
from shared.selection import REPORTED_METRICS
from shared.settings import Settings
from shared.tracking import IMPORTANCES_ARTIFACT, Tracker

log = logging.getLogger(__name__)


def prove(pipeline: Any) -> None:
    """Raises unless the pipeline answers the challenge's example."""
    probabilities(pipeline, pd.DataFrame([CHALLENGE_EXAMPLE]))


class MlflowUnreachableError(Exception):
    """The tracking server does not answer its health check."""


class MlflowChampionSource:
    """Reads an alias (the champion's, unless told) and loads versions through the tracking
    server. Only the champion's source keeps a local copy of what it loads."""

    def __init__(self, settings: Settings, alias: str | None = None) -> None:
        # Neither asks the server anything until used: the gateway starts (and answers 503)
        # while MLflow is away.
        self.registry = Registry(settings)
        self.tracker = Tracker(settings)
        self.alias = alias or settings.champion_alias
        folder = settings.champion_copy_dir
        keeps_copy = folder is not None and self.alias == settings.champion_alias
        self.copy = ChampionCopy(folder) if keeps_copy and folder is not None else None

    def alias_version(self) -> str | None:
        # MLflow's client retries a refused connection with growing pauses (4 s, 8 s, ...):
        # while the server is away (still starting, or down) the attempt fails at once and the
        # cache tries again on its own schedule, so a gateway started beside MLflow serves
        # within a second of MLflow answering.
        uri = self.registry.settings.mlflow_tracking_uri
        if not mlflow_answers(uri):
            raise MlflowUnreachableError(f"MLflow at {uri} does not answer")
        found = self.registry.by_alias(self.alias)
        return str(found.version) if found is not None else None

    def load(self, version: str) -> LoadedModel:
        """Load a version and prove it answers the challenge's example before it is served;
        then keep it as this host's copy, if one is kept."""
        skops_file = self.registry.version_skops_file(version)
        pipeline = load_trusted_skops(skops_file)
        prove(pipeline)
        loaded = LoadedModel(version, pipeline, self.describe(version))
        if self.copy is not None:
            try:
                self.copy.save(loaded, skops_file)
            except OSError as error:  # a full disk costs the next restart's head start only
                log.warning("champion copy not saved in %s: %s", self.copy.folder, error)
        return loaded

    def saved(self) -> LoadedModel | None:
        """This host's copy of the last champion served, proven as load proves a version."""
        return self.copy.load(prove) if self.copy is not None else None

    def describe(self, version: str) -> dict[str, Any]:
        """What /model reports about a version: provenance, scores, decision."""
        record = self.registry.version(version)
        tags = dict(record.tags)
        metrics = self.tracker.run_metrics(record.run_id) if record.run_id else {}
        return {
            "version": version,
            "run_id": record.run_id,
            "candidate": tags.get("candidate"),
            "promoted_at": tags.get("decided_at"),
            "pipeline_run_id": tags.get("pipeline_run_id"),
            "data_hash": tags.get("data_hash"),
            "git_commit": tags.get("git_commit"),
            "libraries": {
                k.removeprefix("lib."): v for k, v in tags.items() if k.startswith("lib.")
            },
            "metrics": {k: metrics[k] for k in REPORTED_METRICS if k in metrics},
            "selection": {
                k: tags.get(k) or None
                for k in (
                    "metric",
                    "score",
                    "champion_version",
                    "champion_score",
                    "decision",
                    "reason",
                )
            },
        }

    def importances(self, run_id: str) -> dict[str, Any] | None:
        """Mean |SHAP| per class, once the explain stage has logged it."""
        try:
            return self.tracker.load_dict(run_id, IMPORTANCES_ARTIFACT)
        except (MlflowException, OSError) as error:
            log.info("no importances yet for run %s: %s", run_id, error)
            return None
