import pytest

from shared.pipeline import STAGE_NAMES, STAGES
from shared.runs import overall_state, run_stages, summarize_candidates


@pytest.mark.parametrize(
    ("candidates", "state"),
    [
        ({}, "pending"),
        ({"a": {"state": "queued"}, "b": {"state": "queued"}}, "queued"),
        ({"a": {"state": "started"}, "b": {"state": "queued"}}, "started"),
        ({"a": {"state": "retrying"}, "b": {"state": "finished"}}, "started"),
        ({"a": {"state": "finished"}, "b": {"state": "finished"}}, "finished"),
        ({"a": {"state": "failed", "error": "boom"}, "b": {"state": "finished"}}, "failed"),
    ],
)
def test_training_state_follows_its_candidates(candidates, state):
    assert summarize_candidates(candidates)["state"] == state


def test_finished_candidates_span_their_stage_from_the_first_start_to_the_last_end():
    candidates = {
        "rf": {"state": "finished", "started_at": 10.0, "ended_at": 14.0},
        "lgbm": {"state": "finished", "started_at": 11.0, "ended_at": 13.0},
    }
    summary = summarize_candidates(candidates)
    assert (summary["started_at"], summary["ended_at"]) == (10.0, 14.0)


def test_training_failure_names_the_candidate():
    summary = summarize_candidates({"rf": {"state": "failed", "error": "out of memory"}})
    assert summary["error"] == "rf: out of memory"


def _stages(done: int, then: str = "pending") -> dict:
    """A run whose first `done` stages finished, the next one in state `then`, the rest pending."""
    states = ["finished"] * done + [then] + ["pending"] * len(STAGE_NAMES)
    return {name: {"state": state} for name, state in zip(STAGE_NAMES, states, strict=False)}


LAST = len(STAGE_NAMES) - 1


@pytest.mark.parametrize(
    ("done", "then", "overall"),
    [
        (0, "queued", "queued"),
        (0, "started", "running"),
        (1, "queued", "running"),
        (3, "started", "running"),
        # Explained, the other candidates' models still being logged: not finished yet.
        (LAST, "started", "running"),
        (LAST, "finished", "finished"),
        (0, "failed", "failed"),
        (2, "failed", "failed"),
        (LAST, "failed", "failed"),
    ],
)
def test_overall_state(done, then, overall):
    assert overall_state(_stages(done, then)) == overall


def test_a_run_is_finished_once_every_stage_is_whichever_ends_last():
    stages = _stages(LAST + 1)
    stages["explain"] = {"state": "started"}  # archive runs beside it, and ended first
    assert overall_state(stages) == "running"
    stages["explain"] = {"state": "finished"}
    assert overall_state(stages) == "finished"


def test_a_run_recorded_before_the_archive_stage_ends_with_explain():
    finished = {"state": "finished"}
    legacy = {"prep": finished, "select": finished, "explain": finished}
    candidates = {"rf": finished}

    stages = run_stages(legacy, candidates)

    assert list(stages) == ["prep", "train", "select", "explain"]
    assert overall_state(stages) == "finished"
    # A new run records every stage from the start, and is finished only once all are.
    created = {stage.name: {"state": "pending"} for stage in STAGES if not stage.per_candidate}
    current = run_stages({**created, **legacy}, candidates)
    assert list(current) == list(STAGE_NAMES)
    assert overall_state(current) == "running"
