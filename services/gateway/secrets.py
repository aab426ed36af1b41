"""The gateway's secrets are strong or absent: an empty or short one is refused at start-up.

An empty RETRAIN_TOKEN would accept `Authorization: Bearer `, and an empty dashboard password
the login `admin:`. Unset is fine: retrain and the dashboard then answer 401 to everyone.
"""

from pydantic import SecretStr

from shared.errors import ConfigError
from shared.settings import Settings

MIN_SECRET_LENGTH = 16
GENERATE = "python3 -c 'import secrets; print(secrets.token_urlsafe(24))'"


def check_secrets(settings: Settings) -> None:
    """Raise ConfigError naming each secret that is set but weak, and how to make a good one."""
    secrets: dict[str, SecretStr | None] = {
        "RETRAIN_TOKEN": settings.retrain_token,
        "DASHBOARD_PASSWORD": settings.dashboard_password,
    }
    weak = [
        name
        for name, value in secrets.items()
        if value is not None and len(value.get_secret_value().strip()) < MIN_SECRET_LENGTH
    ]
    if weak:
        raise ConfigError(
            f"{' and '.join(weak)} must be at least {MIN_SECRET_LENGTH} characters (or unset, "
            f"which turns the feature off); generate one with: {GENERATE}"
        )
