"""Validate stage: check the cleaned data before any candidate trains on it (shared.validation).

Data that breaks an expectation fails the run here, with every broken expectation in the
stage's error and in a report on the run's `data-validation` MLflow run; nothing trains, so
the champion is never put to the vote. Data that passes becomes what the next run's data is
compared with.
"""

from dataclasses import asdict

from services.workers.context import StageContext
from shared.errors import DataError
from shared.ledger import Ledger
from shared.pipeline import RunInputs
from shared.stage_records import Prepared, Validated
from shared.storage import read_parquet
from shared.tracking import Tracker
from shared.validation import (
    DataProfile,
    ValidationReport,
    profile_from_metrics,
    profile_metrics,
    report_markdown,
    validate_clean,
)

KIND = "data-validation"


# The ledger's entry for the last data that passed (shared.ledger): its MLflow run and profile,
# recorded by validate itself, so a data-validation run logged to MLflow by anyone else never
# becomes the baseline.
BASELINE = "validation-baseline"


def last_passed(ledger: Ledger, run_id: str) -> tuple[str | None, DataProfile | None]:
    """The MLflow run and profile of the newest data that passed, before this run's."""
    entry = ledger.entry(BASELINE)
    if entry is None or entry["pipeline_run_id"] == run_id:
        return None, None
    return entry["validation_run_id"], DataProfile(**entry["profile"])


def log_report(
    tracker: Tracker, child: str, report: ValidationReport, baseline_run: str | None
) -> None:
    tracker.log_values(
        child,
        {"passed": report.passed},
        profile_metrics(report.profile) | {"failed_expectations": len(report.failures)},
    )
    document = {
        "passed": report.passed,
        "failures": report.failures,
        "profile": asdict(report.profile),
        "baseline": asdict(report.baseline) if report.baseline else None,
        "baseline_run_id": baseline_run,
    }
    tracker.log_dict(child, document, "validation/report.json")
    tracker.log_text(child, report_markdown(report), "validation/report.md")


def run_validate(context: StageContext, run: RunInputs) -> Validated:
    """Check the run's cleaned data; DataError (no retry) naming every broken expectation."""
    tracker, prepared, run_id = context.tracker, run.get(Prepared), run.run_id
    done = tracker.finished_child_run(run_id, KIND, KIND)
    if done is not None:  # an earlier try passed and logged it
        profile = profile_from_metrics(dict(done.data.metrics))
        return Validated(
            validation_run_id=done.info.run_id,
            rows_out=profile.rows_out,
            category_shares=profile.category_shares,
            baseline_run_id=done.data.tags.get("baseline_run_id") or None,
        )
    baseline_run, baseline = last_passed(context.ledger, run_id)
    clean = read_parquet(context.dataset_file(prepared))
    expected = context.params.validation.expectations()
    report = validate_clean(clean, prepared.rows_in, expected, baseline)
    tags = {"data_hash": prepared.data_hash, "baseline_run_id": baseline_run or ""}
    child = tracker.start_child_run(prepared.parent_run_id, run_id, KIND, KIND, tags=tags)
    log_report(tracker, child, report, baseline_run)
    if not report.passed:
        tracker.end_run(child, "FAILED")  # never the baseline of a later run
        raise DataError("data failed validation: " + "; ".join(report.failures))
    tracker.end_run(child)
    context.ledger.record(
        BASELINE,
        {"validation_run_id": child, "pipeline_run_id": run_id, "profile": asdict(report.profile)},
    )
    return Validated(
        validation_run_id=child,
        rows_out=report.profile.rows_out,
        category_shares=report.profile.category_shares,
        baseline_run_id=baseline_run,
    )
