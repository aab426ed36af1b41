"""The first champion is trained once: never when one exists, never twice when a run is going."""

from types import SimpleNamespace
from typing import Any

import pytest

from services.client.api import ClientError
from services.stack.bootstrap import BootstrapError, ensure_champion

FINISHED = {"state": "finished", "stages": {"select": {"state": "finished"}}}


class Registry:
    """The champion as the tracker reports it: None until a run promotes one."""

    def __init__(self, champion: Any = None) -> None:
        self.current = champion

    def champion(self) -> Any:
        return self.current


class Gateway:
    """What the gateway answers: a new run, or 409 naming the run already under way."""

    def __init__(self, registry: Registry, busy_with: str | None = None, run=FINISHED) -> None:
        self.registry, self.busy_with, self.result = registry, busy_with, run
        self.retrains: list[str | None] = []
        self.followed: list[str] = []

    def retrain(self, reason: str | None = None, **_: Any) -> dict[str, Any]:
        self.retrains.append(reason)
        if self.busy_with:
            body = {"error": "run_in_progress", "run_id": self.busy_with}
            raise ClientError("409 run in progress", 409, body)
        return {"run_id": "new-run"}

    def follow(self, run_id: str, on_change: Any, **_: Any) -> dict[str, Any]:
        self.followed.append(run_id)
        on_change(self.result)
        if self.result["state"] == "finished":
            self.registry.current = SimpleNamespace(version="1")
        return dict(self.result)


def test_with_a_champion_nothing_is_queued():
    registry = Registry(SimpleNamespace(version="3"))
    gateway = Gateway(registry)
    ensure_champion(registry, gateway)
    assert gateway.retrains == [] and gateway.followed == []


def test_without_one_a_run_is_queued_and_followed_to_its_champion():
    registry = Registry()
    gateway = Gateway(registry)
    ensure_champion(registry, gateway)
    assert len(gateway.retrains) == 1 and gateway.followed == ["new-run"]
    assert registry.champion().version == "1"


def test_a_run_already_under_way_is_followed_not_doubled():
    registry = Registry()
    gateway = Gateway(registry, busy_with="their-run")
    ensure_champion(registry, gateway)
    assert gateway.followed == ["their-run"]


def test_a_failed_first_run_is_an_error_naming_its_stages():
    registry = Registry()
    failed = {"state": "failed", "stages": {"prep": {"state": "failed", "error": "bad data"}}}
    with pytest.raises(BootstrapError, match="bad data"):
        ensure_champion(registry, Gateway(registry, run=failed))


def test_a_refused_retrain_is_an_error_not_a_retry_loop():
    registry = Registry()

    class Unauthorised(Gateway):
        def retrain(self, reason: str | None = None, **_: Any) -> dict[str, Any]:
            raise ClientError("401 missing or wrong bearer token", 401, {})

    with pytest.raises(BootstrapError, match="401"):
        ensure_champion(registry, Unauthorised(registry))
