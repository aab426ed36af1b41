"""Setting a challenger, by hand (POST /model/challenger) or by a run whose winner lost the gate
by a small margin: the registry's alias, the history's event and a fresh tally in Redis, in
that order of preparation, then a message that wakes every gateway process.

The tally (services.gateway.shadow fills it) is one Redis hash per challenger version.
"""

from collections.abc import Mapping
from typing import Any

from redis import Redis

from shared.lifecycle import Event, now
from shared.queues import publish_promotion
from shared.registry import Registry
from shared.selection import Comparison, GateDecision
from shared.settings import Settings


def tally_key(prefix: str, version: str) -> str:
    """The Redis hash holding a challenger version's tallies."""
    return f"{prefix}:v{version}"


def start_tally(redis: Redis, prefix: str, version: str, since: str) -> None:
    """A new tally for a version set as challenger: an earlier trial's counts are not its."""
    key = tally_key(prefix, version)
    with redis.pipeline() as pipe:
        pipe.delete(key)
        pipe.hset(key, "since", since)
        pipe.execute()


def set_challenger(
    registry: Registry,
    redis: Redis,
    settings: Settings,
    version: str,
    reason: str,
    by: dict[str, str],
) -> Event:
    """Make version the challenger (the caller holds the promotion lock), and say so."""
    current = registry.challenger()
    event = Event(
        now(), "challenger_set", version, str(current.version) if current else None, reason, by
    )
    # The tally first: requests scored once the alias moves count into a fresh one.
    start_tally(redis, settings.challenger_tally_prefix, version, event.at)
    registry.set_challenger(version)
    registry.record(event)
    publish_promotion(redis, settings, version)  # wakes every gateway process
    return event


def near_miss(
    decision: GateDecision, compared: Comparison | None, tolerance: float, margin: float | None
) -> float | None:
    """How far below the champion a refused version scored, when the champion's score is the
    only condition it failed and by no more than margin beyond the tolerance; else None."""
    if margin is None or compared is None or set(decision.failed) != {"champion_now"}:
        return None
    short = compared.score - tolerance - compared.candidate_score
    return short if 0 < short <= margin + 1e-12 else None  # a margin's worth, rounding aside


def replaceable_by_a_run(events: list[Event], version: str | None) -> bool:
    """Whether a run may set its near miss as challenger: there is none, or the one there is
    was set by a run (one set by hand is replaced by hand only)."""
    if version is None:
        return True
    last_set = next(
        (e for e in events if e.action == "challenger_set" and e.version == version), None
    )
    by: Mapping[str, Any] = last_set.by if last_set is not None else {}
    return "run_id" in by
