"""Faults are injected into a stack of their own, shared by the reliability tests (one start-up
instead of one per module) and never by other tests. A test that breaks a part of it repairs
it before it ends (a replaced worker, a restarted server)."""

import json
import urllib.request
from collections.abc import Iterator

import pytest

from services.stack import processes
from services.stack.front import start_front
from shared.launch import launch_run
from shared.queues import connect
from tests.integration.conftest import (
    DASHBOARD,
    GATEWAY_TOKEN,
    Stack,
    running_stack,
    wait_for_run,
)
from tests.reliability.faults import QUICK_GRID, SHIPPED_DATA, champion_version


@pytest.fixture(scope="package")
def isolated_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("faults")) as running:
        yield running


@pytest.fixture(scope="package")
def fault_gateway(isolated_stack: Stack) -> Iterator[str]:
    """The gateway under gunicorn on the module's stack, serving a champion trained for it."""
    stack = isolated_stack
    if champion_version(stack) is None:
        stack.write_grid(QUICK_GRID)
        run_id = launch_run(connect(stack.settings.redis_url), stack.settings, SHIPPED_DATA)
        assert wait_for_run(stack, run_id)["state"] == "finished"
    env = {
        **stack.env,
        "RETRAIN_TOKEN": GATEWAY_TOKEN,
        "DASHBOARD_USER": DASHBOARD[0],
        "DASHBOARD_PASSWORD": DASHBOARD[1],
        "PRICE_CATEGORY_ALIAS_POLL_SECONDS": "2",
    }
    process, port = processes.start_gateway(stack.folder / "gateway", env)
    url = f"http://127.0.0.1:{port}"

    def serving() -> bool:
        with urllib.request.urlopen(f"{url}/health/ready", timeout=5) as reply:
            return json.load(reply)["model_version"] == champion_version(stack)

    try:
        processes.wait_until(serving, 60, "gateway serving the champion")
        yield url
    finally:
        processes.stop(process)


@pytest.fixture(scope="package")
def fault_front(isolated_stack: Stack, fault_gateway: str) -> Iterator[str]:
    """The buffering front (nginx, as deployed) before the fault gateway; its URL."""
    process, port = start_front(isolated_stack.folder / "front", fault_gateway.split("//")[1])
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        processes.stop(process)
