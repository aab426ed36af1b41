"""`price-category`: predict, retrain (and follow), list runs, show the champion."""

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from services.client.api import ClientError, GatewayClient
from shared.schema import FEATURE_LABELS, PRICE_CATEGORIES
from shared.settings import get_local_settings, get_settings, use_local_mlflow_login


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """Rows as aligned text columns."""
    cells = [headers] + [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def stage_line(run: dict[str, Any]) -> str:
    stages = " ".join(f"{name}={stage['state']}" for name, stage in run["stages"].items())
    return f"[{time.strftime('%H:%M:%S')}] {stages}"


def _listings_text(args: argparse.Namespace) -> str:
    """The listing(s) to price: --json, else the file named, else standard input."""
    if args.json is not None:
        return str(args.json)
    return sys.stdin.read() if args.file == "-" else Path(args.file).read_text()


def cmd_predict(client: GatewayClient, args: argparse.Namespace) -> int:
    answer = client.predict(json.loads(_listings_text(args)))
    predictions = answer.get("predictions", [answer])
    rows = [
        [
            p["id"],
            p["price_category"],
            *(f"{p['probabilities'][c]:.3f}" for c in PRICE_CATEGORIES),
            _price_text(p),
            p["model_version"],
        ]
        for p in predictions
    ]
    print(table(["id", "category", *PRICE_CATEGORIES, "price (80% interval)", "version"], rows))
    return 0


def _price_text(prediction: dict[str, Any]) -> str:
    """The estimated nightly price and its interval; "-" from a model that estimates none."""
    if prediction.get("estimated_price") is None:
        return "-"
    low, high = prediction["price_interval"]
    return f"${prediction['estimated_price']:.0f} (${low:.0f}-${high:.0f})"


def cmd_retrain(client: GatewayClient, args: argparse.Namespace) -> int:
    accepted = client.retrain(args.data, args.reason, args.force)
    print(f"run {accepted['run_id']} queued on {accepted['data_path']}", flush=True)
    if not args.wait:
        return 0
    run = client.follow(
        accepted["run_id"], lambda r: print(stage_line(r), flush=True), timeout=args.timeout
    )
    select = run["stages"]["select"]
    if run["state"] != "finished":
        failed = [
            f"{n}: {s.get('error')}" for n, s in run["stages"].items() if s["state"] == "failed"
        ]
        print("run failed: " + "; ".join(failed), file=sys.stderr)
        return 1
    print(decision_line(select))
    return 0


def decision_line(select: dict[str, Any]) -> str:
    """What select decided about a finished run's winner, and why when it was not promoted."""
    scored = f"{select['winner']}, {select['metric']} {select['score']:.4f}"
    if select.get("decision") == "unchanged":
        return f"no new version ({scored}): {select['reason']}"
    if select.get("promoted"):
        return f"version {select['version']} ({scored}): promoted to champion"
    reason = select.get("reason") or "not better than the champion"
    return f"version {select['version']} ({scored}): champion kept: {reason}"


def cmd_upload_data(client: GatewayClient, args: argparse.Namespace) -> int:
    """Log a dump to MLflow (MLFLOW_TRACKING_URI) and print the name a retrain takes: any
    prep worker, on any node, reads it from there."""
    # MLflow is imported here alone: the other commands start without its second of imports.
    # Its "View run" lines would mix with the name printed for scripts to read.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    use_local_mlflow_login()
    from mlflow.exceptions import MlflowException

    from shared.raw_data import upload

    dump = Path(args.file)
    if not dump.is_file():
        raise OSError(f"no such file: {dump}")
    try:
        print(upload(get_settings(), dump))
    except MlflowException as error:
        raise ClientError(f"MLflow refused the upload: {error}") from None
    return 0


def cmd_runs(client: GatewayClient, args: argparse.Namespace) -> int:
    rows = []
    for run in client.runs(args.limit):
        select = run["stages"]["select"]
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(run["created_at"]))
        rows.append(
            [
                run["run_id"],
                created,
                run["state"],
                select.get("version") or "-",
                select.get("decision", select.get("promoted", "")),
            ]
        )
    print(table(["run", "created", "state", "version", "decision"], rows))
    return 0


def cmd_model(client: GatewayClient, args: argparse.Namespace) -> int:
    model = client.model()
    print(
        f"champion version {model['version']} ({model.get('candidate')}), "
        f"promoted {model.get('promoted_at')}, data {model.get('data_hash')}, "
        f"commit {str(model.get('git_commit'))[:12]}"
    )
    print(table(["metric", "value"], [[k, f"{v:.4f}"] for k, v in model["metrics"].items()]))
    for label, features in (model.get("importances") or {}).items():
        top = ", ".join(
            f"{FEATURE_LABELS.get(name, name)} {value:.3f}"
            for name, value in list(features.items())[:5]
        )
        print(f"{label}: {top}")
    return 0


def cmd_rollback(client: GatewayClient, args: argparse.Namespace) -> int:
    moved = client.rollback(args.version, args.pin, args.reason)
    pinned = ", pinned" if moved.get("pinned") else ""
    print(f"champion is version {moved['version']} (was {moved['from_version']}){pinned}")
    return 0


def cmd_pin(client: GatewayClient, args: argparse.Namespace) -> int:
    answer = client.pin(not args.lift, args.reason)
    state = "pinned" if answer["pinned"] else "not pinned: runs may promote"
    print(f"champion version {answer['champion_version']}: {state}")
    return 0


def cmd_challenger(client: GatewayClient, args: argparse.Namespace) -> int:
    if args.set:
        answer = client.set_challenger(args.set, args.reason)
        print(
            f"challenger is version {answer['version']} beside champion "
            f"{answer['champion_version']}: {answer['share']:.0%} of requests also scored by it"
        )
    elif args.remove:
        answer = client.remove_challenger(args.reason)
        print(f"version {answer['version']} is no longer tried")
    elif args.promote:
        answer = client.promote_challenger(args.reason)
        print(f"champion is version {answer['version']} (was {answer['from_version']})")
        print(f"gate: {answer['decision']['reason']}")
    else:
        print(json.dumps(client.challenger(), indent=2))
    return 0


def cmd_history(client: GatewayClient, args: argparse.Namespace) -> int:
    rows = []
    for event in client.history()["events"][: args.limit]:
        by = event["by"].get("run_id") or f"token, request {event['by'].get('request_id')}"
        rows.append(
            [
                event["at"][:19].replace("T", " "),
                event["action"],
                event["version"],
                event.get("from_version") or "-",
                by,
                event.get("reason") or "",
            ]
        )
    print(table(["at (UTC)", "action", "version", "replaced", "asked by", "reason"], rows))
    return 0


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="price-category", description=__doc__)
    main.add_argument("--url", default=get_local_settings().gateway())
    commands = main.add_subparsers(dest="command", required=True)
    predict = commands.add_parser("predict", help="price a listing or a JSON file of listings")
    predict.add_argument(
        "file", nargs="?", default="-", help="JSON file (object or array); - is stdin"
    )
    predict.add_argument("--json", help="the listing(s) as a JSON string")
    retrain = commands.add_parser("retrain", help="queue a pipeline run")
    retrain.add_argument(
        "--data",
        help="raw listings file under data/raw/, runs:/<run id>/<path> or s3://<bucket>/<key>",
    )
    retrain.add_argument("--reason")
    retrain.add_argument("--force", action="store_true", help="queue even if a run is active")
    retrain.add_argument("--wait", action="store_true", help="follow the run until it ends")
    retrain.add_argument("--timeout", type=float, default=900)
    runs = commands.add_parser("runs", help="recent runs, newest first")
    runs.add_argument("--limit", type=int, default=20)
    commands.add_parser("model", help="the champion: version, scores, importances")
    rollback = commands.add_parser(
        "rollback", help="serve the version promoted before the champion (or --version N)"
    )
    rollback.add_argument("--version", help="the registry version to serve instead")
    rollback.add_argument("--pin", action="store_true", help="and stop automatic promotions")
    rollback.add_argument("--reason")
    pin = commands.add_parser("pin", help="stop automatic promotions (--lift resumes them)")
    pin.add_argument("--lift", action="store_true", help="lift the pin")
    pin.add_argument("--reason")
    challenger = commands.add_parser(
        "challenger",
        help="the version tried beside the champion, and how it compares; or --set N, "
        "--remove, --promote",
    )
    action = challenger.add_mutually_exclusive_group()
    action.add_argument("--set", metavar="N", help="try registered version N on live traffic")
    action.add_argument("--remove", action="store_true", help="stop trying it")
    action.add_argument(
        "--promote", action="store_true", help="make it champion, through the gate's conditions"
    )
    challenger.add_argument("--reason")
    history = commands.add_parser(
        "history", help="promotions, rollbacks, pins and challengers, newest first"
    )
    history.add_argument("--limit", type=int, default=20)
    upload_data = commands.add_parser(
        "upload-data", help="log a raw listings file to MLflow; prints its runs:/ name"
    )
    upload_data.add_argument("file")
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    client = GatewayClient(args.url, get_local_settings().secret("RETRAIN_TOKEN"))
    handlers = {
        "predict": cmd_predict,
        "retrain": cmd_retrain,
        "runs": cmd_runs,
        "model": cmd_model,
        "rollback": cmd_rollback,
        "pin": cmd_pin,
        "challenger": cmd_challenger,
        "history": cmd_history,
        "upload-data": cmd_upload_data,
    }
    try:
        return handlers[args.command](client, args)
    except (ClientError, OSError, json.JSONDecodeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
