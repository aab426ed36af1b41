"""POST /model/rollback and /model/pin refuse what they cannot act on, before acting."""

import pytest

BEARER = {"Authorization": "Bearer s3cret-token-0123456789"}  # the unit settings' token


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("post", "/model/rollback", {}),
        ("post", "/model/pin", {"pin": True}),
        ("post", "/model/challenger", {"version": 3}),
        ("delete", "/model/challenger", {}),
        ("post", "/model/challenger/promote", {}),
    ],
)
def test_changing_the_champion_needs_the_retrain_token(client, method, path, body):
    reply = getattr(client, method)(path, json=body)
    assert reply.status_code == 401
    assert reply.get_json()["error"] == "unauthorized"


@pytest.mark.parametrize(
    "path, body, field",
    [
        ("/model/rollback", {"version": "v3"}, "version"),
        ("/model/rollback", {"version": 2, "pinned": True}, "pinned"),
        ("/model/pin", {}, "pin"),
        ("/model/pin", {"pin": "maybe"}, "pin"),
        ("/model/challenger", {}, "version"),
        ("/model/challenger", {"version": 0}, "version"),
        ("/model/challenger", {"version": 3, "share": 0.5}, "share"),
        ("/model/challenger/promote", {"force": True}, "force"),
    ],
)
def test_a_bad_body_is_422_naming_the_field(client, path, body, field):
    reply = client.post(path, json=body, headers=BEARER)
    assert reply.status_code == 422
    assert [f["path"] for f in reply.get_json()["fields"]] == [field]


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/model/history"),
        ("post", "/model/rollback"),
        ("get", "/model/challenger"),
        ("delete", "/model/challenger"),
        ("post", "/model/challenger/promote"),
    ],
)
def test_with_mlflow_away_it_is_503_and_says_so(client, method, path):
    # The unit settings name a port nothing listens on.
    reply = getattr(client, method)(path, headers=BEARER)
    assert reply.status_code == 503
    assert reply.get_json()["error"] == "mlflow_unavailable"


def test_mlflow_failing_after_its_health_check_is_503_not_500(client, monkeypatch):
    from mlflow.exceptions import MlflowException

    from services.gateway.routes import lifecycle
    from shared.registry import Registry

    def failing(self):
        raise MlflowException("connection reset by peer")

    monkeypatch.setattr(lifecycle, "mlflow_answers", lambda uri: True)
    monkeypatch.setattr(Registry, "pin", failing)
    reply = client.get("/model/history")
    assert reply.status_code == 503
    assert reply.get_json()["error"] == "mlflow_unavailable"
    assert reply.headers["Retry-After"] == "5"
