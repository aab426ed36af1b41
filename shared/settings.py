"""Typed settings: environment variables over config/settings.yaml over defaults.

Environment variables carry the PRICE_CATEGORY_ prefix (PRICE_CATEGORY_PIPELINE_CONFIG, ...):
a shell that exports a generic name such as PROJECT_DIR for another tool must not redirect
this one. The well-known names keep theirs: REDIS_URL, MLFLOW_TRACKING_URI, and the three
secrets a deployment sets (RETRAIN_TOKEN, DASHBOARD_USER, DASHBOARD_PASSWORD).

LocalSettings holds what only the local runner and the command-line client read (STATE_DIR,
the ports, GATEWAY_URL), under their unprefixed names.
"""

import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Self

from pydantic import AliasChoices, Field, PositiveInt, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

PROJECT_DIR = Path(__file__).resolve().parent.parent
ENV_PREFIX = "PRICE_CATEGORY_"


def well_known(name: str) -> AliasChoices:
    """A setting read from its unprefixed environment variable (and given by field name)."""
    return AliasChoices(name.upper(), name)


class Settings(BaseSettings):
    """Where the services are and how stages behave; secrets come only from the environment."""

    model_config = SettingsConfigDict(
        yaml_file=PROJECT_DIR / "config" / "settings.yaml", extra="ignore", env_prefix=ENV_PREFIX
    )

    project_dir: Path = PROJECT_DIR
    redis_url: str = Field("redis://127.0.0.1:6379/0", validation_alias=well_known("redis_url"))
    mlflow_tracking_uri: str = Field(
        "http://127.0.0.1:5000", validation_alias=well_known("mlflow_tracking_uri")
    )
    experiment_name: str = "price-category"
    # Experimentation mode (`dvc repro`) logs here, and registers or promotes nothing unless
    # PRICE_CATEGORY_PROMOTE_EXPERIMENT is set; then through the same gate and lock as a queued run.
    repro_experiment_name: str = "price-category-experiments"
    promote_experiment: bool = False
    model_name: str = "price-category"
    champion_alias: str = "champion"
    # A version tried on live traffic beside the champion (POST /model/challenger): the share
    # of prediction requests it also scores, after the champion's answer is sent, and the
    # Redis hash prefix its tallies go to (one hash per challenger version).
    challenger_alias: str = "challenger"
    challenger_share: float = Field(0.1, ge=0, le=1)
    challenger_tally_prefix: str = "price-category:challenger"
    pipeline_config: Path = PROJECT_DIR / "config" / "pipeline.yaml"
    default_data_path: Path = Path("data/raw/listings.csv.gz")
    promotion_channel: str = "price-category:promotions"
    # Seconds a stage may run before RQ kills it (then it is retried like any transient
    # fault), by stage name, over each stage's declared timeout (shared.pipeline). Also read
    # from one variable per stage: PRICE_CATEGORY_TRAIN_TIMEOUT=3600.
    stage_timeouts: dict[str, PositiveInt] = {}
    # Retries for transient faults (Redis, MLflow or PostgreSQL away, worker killed).
    job_retries: int = Field(2, ge=0)
    retry_intervals: list[int] = [5, 30]
    # How long Redis keeps a run's status, and a finished or failed job (its result, its error).
    run_ttl_seconds: int = Field(30 * 24 * 3600, ge=60)
    job_result_ttl_seconds: int = Field(7 * 24 * 3600, ge=60)

    # Gateway. Secrets have no default: without them, retrain and the dashboard answer 401.
    retrain_token: SecretStr | None = Field(None, validation_alias=well_known("retrain_token"))
    dashboard_user: str | None = Field(None, validation_alias=well_known("dashboard_user"))
    dashboard_password: SecretStr | None = Field(
        None, validation_alias=well_known("dashboard_password")
    )
    raw_data_dir: Path = Path("data/raw")
    max_batch: int = Field(10_000, ge=1)
    # Threads one big batch (2,000 listings or more) may predict with; None: every core.
    batch_threads: int | None = Field(None, ge=1)
    max_body_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    # Seconds between checks of the champion alias, in case a promotion message was missed.
    alias_poll_seconds: float = Field(30.0, gt=0)
    champion_startup_wait: float = Field(30.0, ge=0)  # seconds a gateway process waits for it
    # A folder of this host's where the gateway keeps a copy of the champion it serves, which
    # a gateway starting again serves before MLflow answers (services.gateway.champion_copy).
    # None: no copy (a restarted gateway waits for MLflow).
    champion_copy_dir: Path | None = None
    # Compile the champion's LightGBM trees to native code (TL2cgen; needs gcc) in each gateway
    # process, and predict with them once they answer exactly as LightGBM does.
    compiled_trees: bool = True
    # The gateway answers 503 quickly rather than hang when Redis does not answer.
    gateway_redis_timeout: float = Field(2.0, gt=0)
    explain_top_features: int = Field(5, ge=1)
    # Listings one ?explain=true request may hold: answered within a second by every model of
    # the shipped grid (the 500-tree forest takes up to 40 ms a listing; LightGBM about 4).
    max_explain_batch: int = Field(25, ge=1)
    # Expensive requests served at once across the gateway processes of a host: more
    # ?explain=true requests are answered 429 explain_busy, more batches of 2,000 listings or
    # more predict on one core instead of every one. None: cores - 1 (at least 1), so a core
    # is left to predictions.
    work_slots: int | None = Field(None, ge=1)
    # The prediction log (services.gateway.prediction_log): a Redis Stream of every answered
    # listing, one entry per request, holding at most max_listings listings that the monitor
    # has not drained (it deletes what it drains); a gateway process buffers at most buffer
    # listings while Redis is away, and drops (and counts) what does not fit either.
    prediction_log: bool = True
    prediction_log_stream: str = "price-category:predictions"
    # About 530 bytes of Redis memory a listing in a batch, 630 alone: 200,000 is 106-126 MB,
    # inside the compose file's Redis maxmemory (400 MB) with room for queues and runs.
    prediction_log_max_listings: int = Field(200_000, ge=1)
    prediction_log_buffer: int = Field(20_000, ge=1)
    # The monitor worker (queue "monitor"): drains the log into Parquet files by day under
    # monitor_dir every monitor_drain_seconds, keeping monitor_retention_days of them.
    monitor_dir: Path = Path("data/monitor/predictions")
    monitor_drain_seconds: int = Field(60, ge=1)
    monitor_retention_days: int = Field(30, ge=1)
    # The drift check runs this often (and on POST /monitor); what it calls drift, and whether
    # drift queues a retrain, is in monitor_config (read afresh for every check).
    monitor_drift_seconds: int = Field(3600, ge=1)
    # POST /feedback: realised prices go to this stream, and joined to their predictions, to
    # Parquet files by day under feedback_dir (kept as long as the predictions).
    feedback_stream: str = "price-category:feedback"
    # Prices the stream holds at most before the monitor drains them (about 150 bytes each):
    # beyond, POST /feedback is a 503 to retry, never a price silently trimmed.
    feedback_max_prices: int = Field(200_000, ge=1)
    feedback_dir: Path = Path("data/monitor/feedback")
    # Whether a run launched now also trains on the realised prices stored under feedback_dir
    # (each joined listing once, at its latest price): recorded in the run's meta at launch,
    # so the gateway and the monitor's drift retrain decide, and the run says what it used.
    feedback_training: bool = False
    # Whether POST /retrain takes dumps named s3://<bucket>/<key>: read by the gateway (which
    # checks the object exists) and by prep, with boto3's own AWS_* variables for the store.
    s3_dumps: bool = False
    monitor_config: Path = PROJECT_DIR / "config" / "monitor.yaml"

    @model_validator(mode="after")
    def _one_timeout_variable_per_stage(self) -> Self:
        """PRICE_CATEGORY_<STAGE>_TIMEOUT for any stage, so a new stage needs no new field."""
        variables = {}
        for key, value in os.environ.items():
            match = re.fullmatch(rf"{ENV_PREFIX}(\w+)_TIMEOUT", key)
            if match is None or f"{match[1].lower()}_timeout" in type(self).model_fields:
                continue
            if not value.isdigit() or int(value) < 1:
                raise ValueError(f"{key} must be a whole number of seconds, at least 1")
            variables[match[1].lower()] = int(value)
        self.stage_timeouts = {**self.stage_timeouts, **variables}
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, YamlConfigSettingsSource(settings_cls))

    def resolve(self, path: Path) -> Path:
        """A configured path, relative ones taken from the project folder."""
        return path if path.is_absolute() else self.project_dir / path


# The account every process of a stack uses with MLflow (MLFLOW_TRACKING_USERNAME; its password
# is a secret, MLFLOW_TRACKING_PASSWORD). MLflow's clients read both from the environment.
MLFLOW_USERNAME = "price-category"


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()


class LocalSettings(BaseSettings):
    """What the local runner (`make run`) and the `price-category` command read from the
    environment, under the names the README gives them (no prefix)."""

    model_config = SettingsConfigDict(extra="ignore")

    state_dir: Path = PROJECT_DIR / ".state"
    redis_port: int = Field(6379, ge=1, le=65535)
    mlflow_port: int = Field(5000, ge=1, le=65535)
    gateway_port: int = Field(8000, ge=1, le=65535)
    gateway_url: str | None = None  # the CLI's gateway; default: this host's gateway_port
    mlflow_backend_store_uri: str | None = None  # default: SQLite in the state folder
    # Secrets: from the environment, else the ones `make run` generated into the state folder.
    retrain_token: SecretStr | None = None
    dashboard_user: str = "admin"
    dashboard_password: SecretStr | None = None
    redis_password: SecretStr | None = None
    mlflow_tracking_password: SecretStr | None = None  # MLflow's login (user price-category)

    @property
    def secrets_file(self) -> Path:
        return self.state_dir / "secrets.json"

    def gateway(self) -> str:
        return self.gateway_url or f"http://127.0.0.1:{self.gateway_port}"

    def given(self, name: str) -> str | None:
        """A secret (RETRAIN_TOKEN, ...) as the environment gives it, if it does."""
        value: SecretStr | None = getattr(self, name.lower())
        return value.get_secret_value() if value is not None else None

    def secret(self, name: str) -> str | None:
        """A secret from the environment, else the one generated into the state folder."""
        if (value := self.given(name)) is not None:
            return value
        if self.secrets_file.is_file():
            return json.loads(self.secrets_file.read_text()).get(name) or None
        return None


@lru_cache
def get_local_settings() -> LocalSettings:
    return LocalSettings()


def use_local_mlflow_login() -> None:
    """For a command run beside `make run` (the CLI's upload-data, `make repro`): MLflow's login
    from the environment, else the one `make run` generated into the state folder."""
    password = get_local_settings().secret("MLFLOW_TRACKING_PASSWORD")
    if password:
        os.environ.setdefault("MLFLOW_TRACKING_USERNAME", MLFLOW_USERNAME)
        os.environ.setdefault("MLFLOW_TRACKING_PASSWORD", password)
