"""The champion's history as read back from version tags, and where a rollback goes."""

from dataclasses import dataclass, field

import pytest
from pydantic import ValidationError

from shared.contracts import PinRequest, RollbackRequest
from shared.lifecycle import Event, event_tag, history, previous_champion


@dataclass
class Version:
    version: str
    tags: dict[str, str] = field(default_factory=dict)


def promoted(version: str, at: str, run: str, replaced: str = "") -> Version:
    return Version(
        version,
        {
            "decision": "promoted",
            "decided_at": at,
            "pipeline_run_id": run,
            "champion_version": replaced,
            "metric": "roc_auc_ovr",
            "score": "0.8791",
            "reason": "passed every condition",
        },
    )


def by_hand(version: Version, event: Event, nanoseconds: int) -> None:
    key, value = event_tag(event, nanoseconds)
    version.tags[key] = value


def test_the_history_merges_gate_promotions_and_moves_by_hand_newest_first():
    v1 = promoted("1", "2026-12-01T10:00:00+00:00", "run-a")
    v2 = promoted("2", "2026-12-02T10:00:00+00:00", "run-b", replaced="1")
    refused = Version("3", {"decision": "not_promoted", "decided_at": "2026-12-03T10:00:00+00:00"})
    asked = {"token": "retrain", "request_id": "req-1"}
    # Within the same second as v2's promotion, but later: the order is by time, not by text.
    rollback = Event("2026-12-02T10:00:00.500000+00:00", "rolled_back", "1", "2", "bad", asked)
    by_hand(v1, rollback, 1)
    by_hand(v1, Event("2026-12-04T09:00:00.000001+00:00", "pinned", "1", by=asked), 2)

    events = history([v1, v2, refused])

    assert [(e.action, e.version) for e in events] == [
        ("pinned", "1"),
        ("rolled_back", "1"),
        ("promoted", "2"),
        ("promoted", "1"),
    ]
    assert events[1].from_version == "2" and events[1].reason == "bad"
    assert events[1].by == asked
    assert events[2].by == {"run_id": "run-b"}
    assert events[2].from_version == "1"
    assert events[2].score == pytest.approx(0.8791)
    assert events[3].from_version is None  # the first champion replaced nothing


def test_each_rollback_goes_one_promotion_further_back():
    events = history(
        [
            promoted("1", "2026-12-01T10:00:00+00:00", "a"),
            promoted("2", "2026-12-02T10:00:00+00:00", "b"),
            promoted("3", "2026-12-03T10:00:00+00:00", "c"),
        ]
    )
    assert previous_champion(events, "3") == "2"
    assert previous_champion(events, "2") == "1"  # after one rollback, the next goes further
    assert previous_champion(events, "1") is None  # nothing before the first


def test_a_version_promoted_twice_rolls_back_from_its_last_promotion():
    versions = [
        promoted("1", "2026-12-01T10:00:00+00:00", "a"),
        promoted("2", "2026-12-02T10:00:00+00:00", "b"),
        promoted("3", "2026-12-03T10:00:00+00:00", "c"),
    ]
    again = Event("2026-12-04T10:00:00+00:00", "promoted", "2")
    by_hand(versions[1], again, 1)
    assert previous_champion(history(versions), "2") == "3"


def test_a_champion_moved_in_mlflow_by_hand_rolls_back_to_the_last_promotion():
    events = history([promoted("1", "2026-12-01T10:00:00+00:00", "a"), Version("7")])
    assert previous_champion(events, "7") == "1"


@pytest.mark.parametrize("given, kept", [(3, "3"), ("3", "3"), ("003", "3"), (None, None)])
def test_a_rollback_names_a_version_as_a_number_or_digits(given, kept):
    assert RollbackRequest.model_validate({"version": given}).version == kept


@pytest.mark.parametrize("given", [0, -1, "v3", "", "3.0", 3.5, True, "٣"])
def test_anything_else_is_refused_naming_version(given):
    with pytest.raises(ValidationError) as error:
        RollbackRequest.model_validate({"version": given})
    assert error.value.errors()[0]["loc"] == ("version",)


def test_a_pin_must_say_pin_or_lift():
    with pytest.raises(ValidationError):
        PinRequest.model_validate({})
    assert PinRequest.model_validate({"pin": False, "reason": "audit"}).pin is False
