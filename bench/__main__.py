"""`make bench`: serving, retraining and scaling, each side by side with its alternative.

Serving: our gateway under gunicorn; `mlflow models serve` with its own request format; the
notebook-era Flask app that unpickles the model per request; and, in this process, the
model, the gateway's own work and its Flask app, layer by layer (bench.layers).
Starting: `make run` cold (it trains the first champion) and warm.
Retraining: POST /retrain through the queues with 1 and 2 training workers, until the champion
is served and until the run is finished, against the same grid fitted in one process.
Scaling: prep and training on the shipped data and on larger bootstrapped copies. `--quick`
runs each point once, shorter and smaller (under 5 minutes); the full mode takes the median of
3 runs of each.
"""

import argparse
import logging
import shutil
import sys
import tempfile
from pathlib import Path

from bench import report, retrain, scale, serving, startup, targets
from shared.settings import PROJECT_DIR

RAW = PROJECT_DIR / "data/raw/listings.csv.gz"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one short run per point")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    seconds, runs, factors = (5, 1, (1, 3)) if args.quick else (15, 3, (1, 10, 30))
    folder = Path(tempfile.mkdtemp(prefix="bench-"))
    try:
        served = serving.measure_serving(folder / "serving", seconds, runs)
        retrains = retrain.measure_retraining(folder / "retrain", targets.CONFIG, RAW, runs)
        scaled = scale.measure_scaling(folder / "scale", RAW, targets.CONFIG, factors, runs)
        started = startup.measure_startup(folder / "startup", targets.CONFIG, runs)
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # generated data is never kept
    goals = (
        serving.goals(served)
        + startup.goals(started)
        + retrain.goals(retrains)
        + scale.goals(scaled)
    )
    sections = {
        "Goals": report.goal_lines(goals),
        **serving.sections(served),
        **startup.sections(started),
        **retrain.sections(retrains),
        **scale.sections(scaled),
    }
    plot = report.PlotData(
        served.loads,
        {name: timing.total for name, timing in retrains.items()},
        {
            step: [(p.factor, getattr(p, step).seconds) for p in scaled]
            for step in ("prep", "train")
        },
    )
    path = report.write_results(sections, plot, "quick" if args.quick else "full")
    print(path.read_text())  # noqa: T201 - a benchmark prints its numbers
    return 0


if __name__ == "__main__":
    sys.exit(main())
