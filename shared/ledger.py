"""What the stages wrote to MLflow, as they recorded it in Redis.

MLflow is storage, not an authority: whoever reaches it can log a run tagged like one of ours,
or add a file to one. So a stage that reuses what another wrote (a cleaned dataset, the
realised prices, the validation baseline, a drift reference) finds it only through the entry
the writer recorded here, and checks the file it reads against the SHA-256 in that entry.
"""

import json
from typing import Any

from redis import Redis

LEDGER_KEY = "ledger:{name}"


class Ledger:
    """Entries by name (JSON documents). Without a Redis (the experimentation mode) nothing is
    recorded and nothing found: every artifact is then made afresh."""

    def __init__(self, redis: Redis | None) -> None:
        self.redis = redis

    def record(self, name: str, entry: dict[str, Any]) -> None:
        if self.redis is not None:
            self.redis.set(LEDGER_KEY.format(name=name), json.dumps(entry))

    def entry(self, name: str) -> dict[str, Any] | None:
        raw = self.redis.get(LEDGER_KEY.format(name=name)) if self.redis is not None else None
        return dict(json.loads(raw)) if raw else None


def drift_reference_entry(run_id: str) -> str:
    """The entry holding the drift reference of a winner's run (the reference itself: the drift
    check never reads the copy logged to MLflow, where anyone could replace the file)."""
    return f"drift-reference:{run_id}"
