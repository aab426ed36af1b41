"""A gateway refuses to start with a weak secret: empty, blank or under 16 characters."""

import pytest
from pydantic import SecretStr

from services.gateway.app import create_app
from shared.errors import ConfigError

STRONG = "a-strong-secret-0123"


@pytest.mark.parametrize("weak", ["", " ", "short", "fifteen-chars!!", " " * 20])
@pytest.mark.parametrize("secret", ["retrain_token", "dashboard_password"])
def test_a_weak_secret_stops_the_gateway_naming_it(settings, source, secret, weak):
    with pytest.raises(ConfigError) as error:
        weakened = settings.model_copy(update={secret: SecretStr(weak)})
        create_app(weakened, source, watch_champion=False)
    assert secret.upper() in str(error.value)
    assert "secrets.token_urlsafe" in str(error.value)  # and how to make a good one


@pytest.mark.parametrize("value", [None, SecretStr(STRONG)])
def test_an_unset_or_strong_secret_starts(settings, source, value):
    changed = settings.model_copy(update={"retrain_token": value, "dashboard_password": value})
    assert create_app(changed, source, watch_champion=False) is not None
