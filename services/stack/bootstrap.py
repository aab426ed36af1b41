"""The first champion: when the registry has none, one training run through the gateway.

`make run` calls it once its processes are up; compose runs it as the one-shot `bootstrap`
service (`python -m services.stack.bootstrap`, with GATEWAY_URL, RETRAIN_TOKEN and
MLFLOW_TRACKING_URI), so `docker-compose up` ends with a model served and nobody has to know
to retrain first. Once, however often it runs: with a champion it does nothing, and while a
run is already going (another start of it, a user's retrain) it follows that run instead of
queueing a second.

A swarm starts it with no regard to start order, so it first waits for the gateway and MLflow
to answer: asked while MLflow is away, the registry would say "no champion" of one that exists.
"""

import logging
import sys
from typing import Any

from services.client.api import ClientError, GatewayClient
from services.client.cli import stage_line
from services.stack.processes import wait_until
from shared.probes import answers_ok, mlflow_answers
from shared.registry import Registry
from shared.settings import get_local_settings, get_settings

log = logging.getLogger("bootstrap")

REASON = "first start: no champion registered"
# A fresh stack's MLflow upgrades an empty database first: a minute or two on a busy machine.
WAIT_SECONDS = 600


class BootstrapError(Exception):
    """No first champion: the message says why."""


def ensure_champion(registry: Registry, client: GatewayClient) -> None:
    """Train a first model on the default data, through the gateway, when none is registered."""
    champion = registry.champion()
    if champion is not None:
        log.info("champion is version %s", champion.version)
        return
    try:
        run_id = client.retrain(reason=REASON)["run_id"]
        log.info("no champion yet: training a first model (run %s)", run_id)
    except ClientError as error:
        if error.status != 409:
            raise BootstrapError(f"first training run could not start: {error}") from None
        run_id = error.body["run_id"]
        log.info("no champion yet: following run %s, already under way", run_id)
    run = _follow(client, run_id)
    if run["state"] != "finished":
        raise BootstrapError(f"first training run failed: {run['stages']}")
    if registry.champion() is None:
        raise BootstrapError(f"run {run_id} promoted no model: {run['stages'].get('select')}")


def _follow(client: GatewayClient, run_id: str) -> dict[str, Any]:
    try:
        return client.follow(run_id, lambda run: log.info("%s", stage_line(run)))
    except ClientError as error:
        raise BootstrapError(f"first training run could not be followed: {error}") from None


def wait_for_services(gateway_url: str, tracking_uri: str, timeout: float = WAIT_SECONDS) -> None:
    """Until the gateway is alive and MLflow answers; BootstrapError naming what never did."""
    for what, check in (
        (f"the gateway at {gateway_url}", lambda: answers_ok(f"{gateway_url}/health/live")),
        (f"MLflow at {tracking_uri}", lambda: mlflow_answers(tracking_uri)),
    ):
        log.info("waiting for %s", what)
        try:
            wait_until(check, timeout, what)
        except TimeoutError as error:
            raise BootstrapError(str(error)) from None


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    local, settings = get_local_settings(), get_settings()
    client = GatewayClient(local.gateway(), local.given("RETRAIN_TOKEN"))
    try:
        wait_for_services(local.gateway(), settings.mlflow_tracking_uri)
        ensure_champion(Registry(settings), client)
    except BootstrapError as error:
        log.error("%s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
