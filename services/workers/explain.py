"""Explain stage: SHAP importances, evaluation plots and the drift reference of a run's winner,
logged on its run."""

from services.workers.context import StageContext
from shared.evaluation import evaluate_winner
from shared.ledger import drift_reference_entry
from shared.pipeline import RunInputs
from shared.stage_records import Explained, Prepared, Selected
from shared.storage import read_parquet
from shared.tracking import DRIFT_REFERENCE_ARTIFACT, IMPORTANCES_ARTIFACT


def run_explain(context: StageContext, run: RunInputs) -> Explained:
    """Log SHAP and evaluation artifacts on the winner's run."""
    tracker, selected = context.tracker, run.get(Selected)
    winner_run = selected.winner_run_id
    pipeline = tracker.load_model(selected.model_uri)
    clean = read_parquet(context.dataset_file(run.get(Prepared)))
    result = evaluate_winner(pipeline, clean, context.params)
    tracker.log_dict(
        winner_run,
        {"sample_size": result.sample_size, "mean_abs_shap": result.importances},
        IMPORTANCES_ARTIFACT,
    )
    tracker.log_dict(winner_run, result.drift_reference, DRIFT_REFERENCE_ARTIFACT)
    context.ledger.record(drift_reference_entry(winner_run), {"reference": result.drift_reference})
    for artifact, figure in result.figures.items():
        tracker.log_figure(winner_run, figure, artifact)
    if selected.version is not None:  # None: the run registered nothing (an unchanged model)
        context.registry.tag_version(
            selected.version,
            {
                "importances_artifact": IMPORTANCES_ARTIFACT,
                "drift_reference_artifact": DRIFT_REFERENCE_ARTIFACT,
            },
        )
    return Explained(
        winner_run_id=winner_run,
        importances_artifact=IMPORTANCES_ARTIFACT,
        explained_rows=result.sample_size,
    )
