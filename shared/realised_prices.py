"""The realised prices prep may train on, published where any node reads them: MLflow.

The monitor keeps the joined feedback as Parquet on its own disk; a prep worker on another
machine cannot read that. So after each batch of prices it joins, the monitor logs every
matched price it keeps (the listing's fields, the price) to a run of kind "realised-prices",
finished only once the file is in, records it in the ledger (run id, SHA-256), and deletes
the runs this one replaces; prep reads the one the ledger names, checked against its digest
(shared.feedback_training turns it into training rows). A run found in MLflow by its kind is
never read: whoever reaches MLflow could log one.
"""

import tempfile
from pathlib import Path

import pandas as pd

from shared.ledger import Ledger
from shared.storage import file_sha256
from shared.tracking import Tracker

REALISED_PRICES_KIND = "realised-prices"
PRICES_FILE = "realised_prices.parquet"
LEDGER_NAME = "realised-prices"


class RealisedPrices:
    def __init__(self, tracker: Tracker, ledger: Ledger) -> None:
        self.tracker = tracker
        self.ledger = ledger

    def publish(self, feedback: pd.DataFrame) -> str | None:
        """Log the matched prices of the stored feedback (None, and nothing logged, if none)."""
        matched = feedback[feedback["problem"].isna()]
        if matched.empty:
            return None
        tracker = self.tracker
        earlier = tracker.find_runs_of_kind(REALISED_PRICES_KIND)
        with (
            tracker.complete_run(REALISED_PRICES_KIND, "realised-prices", {}) as run_id,
            tempfile.TemporaryDirectory() as folder,
        ):
            path = Path(folder) / PRICES_FILE
            matched.to_parquet(path, index=False)
            tracker.client.log_artifact(run_id, str(path))
            tracker.log_values(run_id, {}, {"matched_prices": len(matched)})
            sha256 = file_sha256(path)
        self.ledger.record(LEDGER_NAME, {"run_id": run_id, "sha256": sha256})
        for old in earlier:  # replaced: their files and runs go
            tracker.delete_artifacts(old.info.run_id)
            tracker.client.delete_run(old.info.run_id)
        return run_id

    def latest(self) -> pd.DataFrame | None:
        """The newest published prices; None when none were."""
        entry = self.ledger.entry(LEDGER_NAME)
        if entry is None:
            return None
        with tempfile.TemporaryDirectory() as folder:
            path = self.tracker.download_checked(
                entry["run_id"], PRICES_FILE, entry["sha256"], Path(folder)
            )
            return pd.read_parquet(path)
