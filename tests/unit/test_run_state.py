import pytest

from shared.pipeline import STAGE_NAMES
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


def test_training_failure_names_the_candidate():
    summary = summarize_candidates({"rf": {"state": "failed", "error": "out of memory"}})
    assert summary["error"] == "rf: out of memory"


def _stages(*states: str) -> dict:
    return {name: {"state": s} for name, s in zip(STAGE_NAMES, states, strict=True)}


@pytest.mark.parametrize(
    ("states", "overall"),
    [
        (("queued", "pending", "pending", "pending", "pending"), "queued"),
        (("started", "pending", "pending", "pending", "pending"), "running"),
        (("finished", "queued", "pending", "pending", "pending"), "running"),
        (("finished", "finished", "finished", "started", "pending"), "running"),
        # Explained, the other candidates' models still being logged: not finished yet.
        (("finished", "finished", "finished", "finished", "started"), "running"),
        (("finished", "finished", "finished", "finished", "finished"), "finished"),
        (("failed", "pending", "pending", "pending", "pending"), "failed"),
        (("finished", "finished", "failed", "pending", "pending"), "failed"),
        (("finished", "finished", "finished", "finished", "failed"), "failed"),
    ],
)
def test_overall_state(states, overall):
    assert overall_state(_stages(*states)) == overall


def test_a_run_recorded_before_the_archive_stage_ends_with_explain():
    finished = {"state": "finished"}
    legacy = {"prep": finished, "select": finished, "explain": finished}
    candidates = {"rf": finished}

    stages = run_stages(legacy, candidates)

    assert list(stages) == ["prep", "train", "select", "explain"]
    assert overall_state(stages) == "finished"
    # A new run records archive from the start, and is finished only once archive is.
    current = run_stages({**legacy, "archive": {"state": "pending"}}, candidates)
    assert list(current) == list(STAGE_NAMES)
    assert overall_state(current) == "running"
