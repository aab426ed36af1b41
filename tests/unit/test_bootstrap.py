"""The first champion is trained once: never when one exists, never twice when a run is going."""

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import pytest

from services.client.api import ClientError
from services.stack.bootstrap import BootstrapError, ensure_champion, wait_for_services
from services.stack.processes import free_port

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


class Health(BaseHTTPRequestHandler):
    """200 for the gateway's and MLflow's health paths, 404 for anything else; the paths it
    answered are kept in the server's `answered`."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        # Kept before answering: the client may go on (and the test read the list) as soon as
        # the headers are out.
        self.server.answered.append(self.path)  # type: ignore[attr-defined]
        self.send_response(200 if self.path in ("/health/live", "/health") else 404)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def late_server() -> Iterator[ThreadingHTTPServer]:
    """A loopback server that starts answering a second after the test begins, as a gateway
    and MLflow do in a stack started all at once."""
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Health)
    server.answered = []  # type: ignore[attr-defined]
    serving = threading.Event()

    def serve() -> None:
        serving.set()
        server.serve_forever()

    starter = threading.Timer(1.0, serve)
    starter.start()
    yield server
    starter.cancel()
    if serving.is_set():  # shutdown() waits for a serve_forever that never started
        server.shutdown()
    server.server_close()


def test_it_waits_for_the_gateway_and_mlflow_before_looking_for_a_champion(late_server):
    # Asked while MLflow is away, the registry says "no champion" of one that exists.
    url = f"http://127.0.0.1:{late_server.server_address[1]}"
    wait_for_services(url, url, timeout=30)
    # It returned because both answered, once the server had started: not before.
    assert set(late_server.answered) == {"/health/live", "/health"}


def test_a_service_that_never_answers_is_named():
    nowhere = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(BootstrapError, match=f"the gateway at {nowhere}"):
        wait_for_services(nowhere, nowhere, timeout=0.5)
