"""The first champion: when the registry has none, one training run through the gateway.

`make run` calls it once its processes are up; compose runs it as the one-shot `bootstrap`
service (`python -m services.stack.bootstrap`, with GATEWAY_URL, RETRAIN_TOKEN and
MLFLOW_TRACKING_URI), so `docker-compose up` ends with a model served and nobody has to know
to retrain first. Once, however often it runs: with a champion it does nothing, and while a
run is already going (another start of it, a user's retrain) it follows that run instead of
queueing a second.
"""

import logging
import sys
from typing import Any

from services.client.api import ClientError, GatewayClient
from services.client.cli import stage_line
from shared.registry import Registry
from shared.settings import get_local_settings, get_settings

log = logging.getLogger("bootstrap")

REASON = "first start: no champion registered"


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


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    local = get_local_settings()
    client = GatewayClient(local.gateway(), local.given("RETRAIN_TOKEN"))
    try:
        ensure_champion(Registry(get_settings()), client)
    except BootstrapError as error:
        log.error("%s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
