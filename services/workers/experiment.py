"""Experimentation mode: the same stage work, run in-process by `dvc repro`, no Redis.

Each stage reads the earlier stages' records from reports/ and writes its own there, so DVC
can track them (dvc.yaml is generated from the declaration: services.workers.dvc_stages);
everything is logged to the MLflow server named by MLFLOW_TRACKING_URI, in an experiment of
its own (PRICE_CATEGORY_REPRO_EXPERIMENT_NAME). An experiment never deploys by accident: select
registers and gates the winner only with PRICE_CATEGORY_PROMOTE_EXPERIMENT=1, and then as a
queued run does, under the same promotion lock (so Redis is needed for that, and told of a
promotion).
"""

import argparse
import logging
import sys
import uuid
from pathlib import Path
from typing import Any

from services.workers.context import StageContext
from services.workers.perform import work_of
from shared.pipeline import STAGE_NAMES, STAGES, RunInputs, Stage, earlier, stage_named
from shared.settings import get_settings, use_local_mlflow_login
from shared.stage_records import Prepared
from shared.storage import read_json, write_json_atomic

REPORTS = Path("reports")


def report_path(stage: Stage) -> Path:
    return REPORTS / f"{stage.name}.json"


def run_stage(stage: Stage, context: StageContext, data_path: str) -> dict[str, Any]:
    """Run one stage on the earlier stages' reports; returns this stage's report: the run id
    and the stage's record (per candidate, for a stage that runs per candidate)."""
    records = {done.name: read_json(report_path(done)) for done in earlier(stage)}
    first = records[STAGES[0].name] if records else {"run_id": str(uuid.uuid4())}
    run_id = str(first["run_id"])
    inputs = RunInputs(run_id, records, {"data_path": first.get("data_path", data_path)})
    work = work_of(stage)
    if stage.per_candidate:
        return {
            "run_id": run_id,
            "candidates": {
                name: work(context, inputs.for_candidate(name)).as_status()
                for name in inputs.candidates
            },
        }
    report = {"run_id": run_id, **work(context, inputs).as_status()}
    if stage == STAGES[-1]:  # one stage at a time, in table order: every stage has run
        context.tracker.end_run(inputs.get(Prepared).parent_run_id)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("stage", choices=STAGE_NAMES)
    parser.add_argument("--data", default="data/raw/listings.csv.gz")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    use_local_mlflow_login()
    settings = get_settings()
    settings = settings.model_copy(update={"experiment_name": settings.repro_experiment_name})
    stage = stage_named(args.stage)
    report = run_stage(stage, StageContext(settings, in_process=True), args.data)
    write_json_atomic(report, report_path(stage))
    return 0


if __name__ == "__main__":
    sys.exit(main())
