"""dvc.yaml, generated from the pipeline's declaration: `python -m services.workers.dvc_stages`
(`make dvc.yaml`) writes it, and a unit test fails when the committed file is stale."""

import sys
from typing import Any

import yaml

from services.workers.experiment import REPORTS, report_path
from shared.pipeline import STAGES, Stage, earlier
from shared.settings import PROJECT_DIR

DVC_YAML = PROJECT_DIR / "dvc.yaml"
RAW_DATA = "data/raw/listings.csv.gz"
PARAMS_FILE = "config/pipeline.yaml"
HEADER = """\
# Generated from shared/pipeline.py by `make dvc.yaml`: edit the declaration, not this file.
#
# Experimentation mode: the pipeline's stages, in the queues' order, in-process, with no
# Redis. Needs an MLflow server at MLFLOW_TRACKING_URI (`make run` starts one). dvc.lock
# pins the raw data's md5, parameters and outputs. Runs are logged to an experiment of their
# own and nothing is registered or promoted unless PRICE_CATEGORY_PROMOTE_EXPERIMENT=1 (then
# through the same gate and promotion lock as a queued run, so REDIS_URL must reach the stack's
# Redis).
"""


def dvc_stage(stage: Stage) -> dict[str, Any]:
    """One stage as DVC runs it: after the earlier stages' reports (or the raw data, for the
    first), its code and its parameters, writing its own report."""
    command = f"python -m services.workers.experiment {stage.name}"
    inputs = [str(report_path(done)) for done in earlier(stage)]
    if not inputs:
        command += f" --data {RAW_DATA}"
        inputs = [RAW_DATA]
    module_file = stage.module.replace(".", "/") + ".py"
    entry: dict[str, Any] = {"cmd": command, "deps": [*inputs, *stage.code, module_file]}
    if stage.params:
        entry["params"] = [{PARAMS_FILE: list(stage.params)}]
    entry["outs"] = [{str(report_path(stage)): {"cache": False}}]
    return entry


def render() -> str:
    stages = {stage.name: dvc_stage(stage) for stage in STAGES}
    return HEADER + yaml.safe_dump({"stages": stages}, sort_keys=False)


def main() -> int:
    DVC_YAML.write_text(render())
    sys.stdout.write(f"wrote dvc.yaml: {len(STAGES)} stages, their reports in {REPORTS}/\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
