"""Prep stage: raw listings file in (plus realised prices, when a run asks), a cleaned dataset
logged to MLflow once per content hash out (shared.datasets), quality logged."""

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from services.workers.context import StageContext
from shared.cleaning import CleanReport, clean_listings
from shared.datasets import DatasetStore, LoggedDataset
from shared.errors import DataError
from shared.feedback_training import StoredFeedback, content_hash, with_feedback
from shared.pipeline import RunInputs
from shared.provenance import provenance_tags
from shared.raw_data import local_raw_file
from shared.realised_prices import RealisedPrices
from shared.stage_records import Prepared
from shared.storage import file_md5, read_raw_listings

log = logging.getLogger(__name__)


def data_version(raw_path: Path, feedback: StoredFeedback | None = None) -> str:
    """The content hash of what prep would clean: the raw file's md5 (as DVC records it), and
    the realised prices' rows when given."""
    if not raw_path.is_file():
        raise DataError(f"raw listings file not found: {raw_path}")
    raw_hash = file_md5(raw_path)
    return raw_hash if feedback is None else content_hash(raw_hash, feedback)


def clean_file(
    raw_path: Path, feedback: StoredFeedback | None = None
) -> tuple[pd.DataFrame, CleanReport]:
    """Clean a raw file, plus the realised prices of stored feedback when given."""
    clean, report = clean_listings(read_raw_listings(raw_path))
    if feedback is not None:
        clean, report = with_feedback(clean, report, feedback)
    return clean, report


@dataclass(frozen=True)
class Cleaned:
    """A data version's cleaned dataset as prep logged it, and whether this run reused it."""

    data_hash: str
    dataset: LoggedDataset
    report: CleanReport
    reused: bool


def clean_once(
    store: DatasetStore, raw_path: Path, feedback: StoredFeedback | None, tags: dict[str, str]
) -> Cleaned:
    """The data version's cleaned dataset: cleaned and logged unless prep logged the same
    content before (in any run, on any node: the ledger says so, never a run found in MLflow
    by its tags)."""
    data_hash = data_version(raw_path, feedback)
    found = store.find(data_hash)
    if found is not None:
        log.info("reusing dataset %s (run %s) for %s", data_hash, found.run_id, raw_path)
        return Cleaned(data_hash, found, CleanReport(**found.report), reused=True)
    clean, report = clean_file(raw_path, feedback)
    logged = store.log(data_hash, clean, asdict(report), tags)
    return Cleaned(data_hash, logged, report, reused=False)


def stored_feedback(context: StageContext, run: RunInputs) -> StoredFeedback | None:
    """The realised prices the monitor published, if the run was launched to train on them
    (None when it has published none), held to the run's validate ranges."""
    if not run.meta.get("feedback_training"):
        return None
    prices = RealisedPrices(context.tracker, context.ledger).latest()
    if prices is None:
        return None
    return StoredFeedback(prices, context.params.validation.ranges)


def run_prep(context: StageContext, run: RunInputs) -> Prepared:
    """Clean the data, open the run's MLflow parent run and log the data-quality figures."""
    settings, tracker, run_id = context.settings, context.tracker, run.run_id
    data_path = str(run.meta["data_path"])
    with local_raw_file(settings, data_path) as raw_path:
        cleaned = clean_once(
            context.datasets, raw_path, stored_feedback(context, run), {"data_path": data_path}
        )
    data_hash, report = cleaned.data_hash, cleaned.report
    data_tags = {"data_hash": data_hash, "data_path": data_path}
    data_tags["feedback_rows"] = str(report.feedback_rows)
    parent = tracker.ensure_pipeline_run(run_id, {**data_tags, **provenance_tags()})
    quality = tracker.finished_child_run(run_id, "data-quality", "data-quality")
    if quality is None:
        quality_id = tracker.start_child_run(parent, run_id, "data-quality", "data-quality")
        metrics = {"rows_in": report.rows_in, "rows_out": report.rows_out}
        metrics["rows_from_feedback"] = report.feedback_rows
        metrics |= {f"dropped_{reason}": n for reason, n in report.dropped.items()}
        metrics |= {f"rows_{label.lower()}": n for label, n in report.per_category.items()}
        tracker.log_values(quality_id, data_tags, metrics)
        tracker.log_dict(quality_id, asdict(report), "data_quality.json")
        tracker.end_run(quality_id)
    else:
        quality_id = quality.info.run_id
    return Prepared(
        data_path=data_path,
        data_hash=data_hash,
        dataset_run_id=cleaned.dataset.run_id,
        dataset_sha256=cleaned.dataset.sha256,
        dataset_reused=cleaned.reused,
        parent_run_id=parent,
        data_quality_run_id=quality_id,
        rows_in=report.rows_in,
        rows_out=report.rows_out,
        dropped=report.dropped,
        feedback_rows=report.feedback_rows,
        candidates=[c.name for c in context.params.train.candidates],
    )
