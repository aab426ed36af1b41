"""Settings come only from prefixed environment variables, and from the well-known names."""

import pytest
from pydantic import ValidationError

from shared.pipeline import STAGES
from shared.settings import PROJECT_DIR, LocalSettings, Settings


def test_generic_names_exported_for_other_tools_change_nothing(monkeypatch, tmp_path):
    for name in ("PROJECT_DIR", "PIPELINE_CONFIG", "MAX_BATCH", "MODEL_NAME", "JOB_RETRIES"):
        monkeypatch.setenv(name, str(tmp_path) if "DIR" in name or "CONFIG" in name else "7")
    settings = Settings()
    assert settings.project_dir == PROJECT_DIR
    assert settings.pipeline_config == PROJECT_DIR / "config" / "pipeline.yaml"
    assert (settings.max_batch, settings.model_name, settings.job_retries) == (
        10_000,
        "price-category",
        2,
    )


def test_prefixed_names_set_them(monkeypatch, tmp_path):
    monkeypatch.setenv("PRICE_CATEGORY_PIPELINE_CONFIG", str(tmp_path / "grid.yaml"))
    monkeypatch.setenv("PRICE_CATEGORY_MAX_BATCH", "7")
    monkeypatch.setenv("PRICE_CATEGORY_RETRY_INTERVALS", "[1, 2]")
    settings = Settings()
    assert settings.pipeline_config == tmp_path / "grid.yaml"
    assert settings.max_batch == 7
    assert settings.retry_intervals == [1, 2]


@pytest.mark.parametrize(
    ("variable", "field", "value"),
    [
        ("REDIS_URL", "redis_url", "redis://:pw@10.0.0.1:6379/0"),
        ("MLFLOW_TRACKING_URI", "mlflow_tracking_uri", "http://mlflow:5000"),
        ("DASHBOARD_USER", "dashboard_user", "ops"),
    ],
)
def test_well_known_names_keep_theirs(monkeypatch, variable, field, value):
    monkeypatch.setenv(variable, value)
    assert getattr(Settings(), field) == value


def test_secrets_keep_their_names_too(monkeypatch):
    monkeypatch.setenv("RETRAIN_TOKEN", "token-0123456789abcdef")
    monkeypatch.setenv("DASHBOARD_PASSWORD", "password-0123456789")
    settings = Settings()
    assert settings.retrain_token.get_secret_value() == "token-0123456789abcdef"
    assert settings.dashboard_password.get_secret_value() == "password-0123456789"


def test_each_stage_takes_its_timeout_from_a_variable_of_its_own(monkeypatch):
    monkeypatch.setenv("PRICE_CATEGORY_STAGE_TIMEOUTS", '{"prep": 30, "explain": 40}')
    monkeypatch.setenv("PRICE_CATEGORY_TRAIN_TIMEOUT", "3600")
    monkeypatch.setenv("PRICE_CATEGORY_EXPLAIN_TIMEOUT", "45")  # the one variable wins
    monkeypatch.setenv("PRICE_CATEGORY_GATEWAY_REDIS_TIMEOUT", "2.5")  # a setting, not a stage
    settings = Settings()
    timeouts = {stage.name: stage.timeout_in(settings) for stage in STAGES}
    declared = {stage.name: stage.timeout for stage in STAGES}
    assert timeouts == declared | {"prep": 30, "train": 3600, "explain": 45}
    assert settings.gateway_redis_timeout == 2.5


@pytest.mark.parametrize("value", ["0", "-5", "ten", "1.5"])
def test_a_stage_timeout_must_be_whole_seconds(monkeypatch, value):
    monkeypatch.setenv("PRICE_CATEGORY_TRAIN_TIMEOUT", value)
    with pytest.raises(ValidationError, match="PRICE_CATEGORY_TRAIN_TIMEOUT"):
        Settings()


def test_the_local_runner_and_the_cli_read_one_state_folder(monkeypatch, tmp_path):
    for name in ("RETRAIN_TOKEN", "GATEWAY_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STATE_DIR", str(tmp_path))
    monkeypatch.setenv("GATEWAY_PORT", "8123")
    (tmp_path / "secrets.json").write_text('{"RETRAIN_TOKEN": "generated-by-make-run"}')

    local = LocalSettings()

    assert local.secret("RETRAIN_TOKEN") == "generated-by-make-run"
    assert local.given("RETRAIN_TOKEN") is None
    assert local.gateway() == "http://127.0.0.1:8123"
    monkeypatch.setenv("RETRAIN_TOKEN", "from-the-environment")
    monkeypatch.setenv("GATEWAY_URL", "http://gateway:8000")
    assert LocalSettings().secret("RETRAIN_TOKEN") == "from-the-environment"
    assert LocalSettings().gateway() == "http://gateway:8000"
