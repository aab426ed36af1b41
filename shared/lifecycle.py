"""The champion's history, read back from the registry: every promotion, rollback and pin,
and every challenger set or removed.

The gate records its decision in the version's own tags (decision, decided_at, reason, ...). A
move made by hand (a rollback) and a pin or unpin each add one tag to the version concerned,
lifecycle.<nanoseconds>, holding the event as JSON. All of it lives in MLflow's store
(PostgreSQL), so the history outlives Redis and every gateway, and reading it is one search.
Pure: the registry reads and writes (shared.registry), this module makes sense of them.
"""

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

EVENT_TAG_PREFIX = "lifecycle."
# On the registered model: the pin in force, as JSON (at, reason, by); absent when none is.
PIN_TAG = "pinned"

Action = Literal[
    "promoted", "rolled_back", "pinned", "unpinned", "challenger_set", "challenger_removed"
]
# Actions that move the champion alias.
ALIAS_MOVES = ("promoted", "rolled_back")


class VersionRecord(Protocol):
    """What a registry version offers here (MLflow's ModelVersion)."""

    @property
    def version(self) -> Any: ...

    @property
    def tags(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class Event:
    """One step of the champion's history. by names who asked: a pipeline run ({"run_id"}) or
    a holder of the retrain token ({"token": "retrain", "request_id"})."""

    at: str  # ISO 8601, UTC
    action: Action
    version: str
    from_version: str | None = None  # the champion it replaced (alias moves)
    reason: str = ""
    by: dict[str, str] = field(default_factory=dict)
    metric: str | None = None
    score: float | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def event_tag(event: Event, nanoseconds: int) -> tuple[str, str]:
    """The version tag that records an event made by hand."""
    return f"{EVENT_TAG_PREFIX}{nanoseconds}", json.dumps(event.as_json())


def _gate_promotion(version: VersionRecord) -> Event | None:
    tags = version.tags
    if tags.get("decision") != "promoted" or not tags.get("decided_at"):
        return None
    score = tags.get("score")
    return Event(
        at=tags["decided_at"],
        action="promoted",
        version=str(version.version),
        from_version=tags.get("champion_version") or None,
        reason=tags.get("reason", ""),
        by={"run_id": tags["pipeline_run_id"]} if tags.get("pipeline_run_id") else {},
        metric=tags.get("metric") or None,
        score=float(score) if score else None,
    )


def _recorded_events(version: VersionRecord) -> list[Event]:
    events = []
    for key, value in version.tags.items():
        if key.startswith(EVENT_TAG_PREFIX):
            recorded = json.loads(value)
            events.append(Event(**{**recorded, "version": str(version.version)}))
    return events


def history(versions: Iterable[VersionRecord]) -> list[Event]:
    """Every promotion, rollback, pin and unpin of the registered model, newest first."""
    events: list[Event] = []
    for version in versions:
        promotion = _gate_promotion(version)
        if promotion is not None:
            events.append(promotion)
        events += _recorded_events(version)
    return sorted(events, key=lambda event: datetime.fromisoformat(event.at), reverse=True)


def previous_champion(events: list[Event], current: str) -> str | None:
    """The version to roll back to from current: the one promoted before current's last
    promotion (the one before that after a second rollback, and so on); with no promotion of
    current on record (an alias moved in MLflow by hand), the last promoted other version."""
    promotions = [event for event in events if event.action == "promoted"]
    since = next((i for i, event in enumerate(promotions) if event.version == current), -1)
    return next((e.version for e in promotions[since + 1 :] if e.version != current), None)
