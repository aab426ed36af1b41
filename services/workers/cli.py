"""Command line: start a pipeline run through the queues and follow it until it ends."""

import argparse
import json
import sys
import time

from shared.launch import launch_run
from shared.queues import connect
from shared.runs import RunStore
from shared.settings import get_settings

TERMINAL_STATES = ("finished", "failed")


def follow(store: RunStore, run_id: str, timeout: float, interval: float = 1.0) -> dict:
    """Print each stage change until the run ends or the timeout passes; the last status."""
    deadline, shown = time.monotonic() + timeout, ""
    while True:
        run = store.get(run_id) or {}
        line = " ".join(f"{name}={stage['state']}" for name, stage in run.get("stages", {}).items())
        if line != shown:
            print(f"[{time.strftime('%H:%M:%S')}] {line}", flush=True)
            shown = line
        if run.get("state") in TERMINAL_STATES or time.monotonic() > deadline:
            return run
        time.sleep(interval)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="price-category", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    retrain = commands.add_parser("retrain", help="queue a pipeline run")
    retrain.add_argument("--data", default=None, help="raw listings, relative to the project")
    retrain.add_argument("--wait", action="store_true", help="follow the run until it ends")
    retrain.add_argument("--timeout", type=float, default=900)
    status = commands.add_parser("status", help="print a run's status as JSON")
    status.add_argument("run_id")
    args = parser.parse_args(argv)

    settings = get_settings()
    redis = connect(settings.redis_url)
    store = RunStore(redis, settings.run_ttl_seconds)
    if args.command == "status":
        run = store.get(args.run_id)
        print(json.dumps(run, indent=2))
        return 0 if run else 1
    run_id = launch_run(
        redis, settings, args.data or str(settings.default_data_path), {"reason": "command line"}
    )
    print(f"run {run_id} queued", flush=True)
    if not args.wait:
        return 0
    run = follow(store, run_id, args.timeout)
    print(json.dumps(run, indent=2))
    return 0 if run.get("state") == "finished" else 1


if __name__ == "__main__":
    sys.exit(main())
