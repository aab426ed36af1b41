"""Experimentation mode: the same stage functions, run in-process by `dvc repro`, no Redis.

Each stage reads the previous stage's report from reports/ and writes its own, so DVC can
track them; everything is logged to the MLflow server named by MLFLOW_TRACKING_URI, in an
experiment of its own (PRICE_CATEGORY_REPRO_EXPERIMENT_NAME). An experiment never deploys by
accident: select registers and gates the winner only with PRICE_CATEGORY_PROMOTE_EXPERIMENT=1,
and then as a queued run does, under the same promotion lock (so Redis is needed for that, and
told of a promotion).
"""

import argparse
import logging
import sys
import uuid
from pathlib import Path
from typing import Any

from services.workers.archive import run_archive
from services.workers.context import StageContext
from services.workers.explain import run_explain
from services.workers.prep import run_prep
from services.workers.select import run_select
from services.workers.train import run_train
from shared.queues import publish_promotion
from shared.settings import get_settings
from shared.storage import read_json, write_json_atomic

REPORTS = Path("reports")


def _report(stage: str) -> dict[str, Any]:
    return read_json(REPORTS / f"{stage}.json")


def run_stage(stage: str, context: StageContext, data_path: str) -> dict[str, Any]:
    """Run one stage on the previous stages' reports; returns this stage's report."""
    if stage == "prep":
        run_id = str(uuid.uuid4())
        return {"run_id": run_id, **run_prep(context, run_id, data_path)}
    prep = _report("prep")
    run_id = prep["run_id"]
    if stage == "train":
        return {
            "run_id": run_id,
            "candidates": {
                name: run_train(context, run_id, name, prep) for name in prep["candidates"]
            },
        }
    if stage == "select":
        promote = context.settings.promote_experiment
        chosen = run_select(context, run_id, prep, register=promote)
        if chosen["promoted"]:
            publish_promotion(context.redis, context.settings, chosen["version"])
        return {"run_id": run_id, **chosen}
    if stage == "archive":
        return {"run_id": run_id, **run_archive(context, run_id, prep)}
    chosen = _report("select")
    winner = {key: chosen[key] for key in ("version", "winner_run_id", "model_uri")}
    return {"run_id": run_id, **run_explain(context, run_id, prep | winner)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("stage", choices=["prep", "train", "select", "explain", "archive"])
    parser.add_argument("--data", default="data/raw/listings.csv.gz")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = get_settings()
    settings = settings.model_copy(update={"experiment_name": settings.repro_experiment_name})
    report = run_stage(args.stage, StageContext(settings), args.data)
    write_json_atomic(report, REPORTS / f"{args.stage}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
