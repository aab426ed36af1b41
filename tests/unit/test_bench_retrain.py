"""The retrain benchmark's arithmetic: each job's time in the pipeline's order, the time no job
worked, and goals naming the two numbers they divide."""

from bench.retrain import FLOOR, ONE, TWO, RetrainTiming, goals, stage_seconds


def test_each_job_in_the_pipeline_s_order_and_the_time_between_them():
    run = {
        "stages": {
            "prep": {"started_at": 1, "ended_at": 2},
            "validate": {"started_at": 2, "ended_at": 3},
            "train": {"state": "finished"},
            "select": {"started_at": 5, "ended_at": 6},
            "explain": {"started_at": 6.5, "ended_at": 8},
            "archive": {"started_at": 8, "ended_at": 9},
        },
        "candidates": {
            "a": {"started_at": 3, "ended_at": 5},
            "b": {"started_at": 3, "ended_at": 4},
        },
    }

    steps = stage_seconds(run, posted=0.5)

    assert list(steps) == [
        "prep", "validate", "train a", "train b", "select", "explain", "archive",
        "waiting between jobs",
    ]  # fmt: skip
    assert steps["waiting between jobs"] == 1.0  # before prep, and between select and explain


def test_goals_name_both_numbers_and_say_no_when_missed():
    timings = {
        FLOOR: RetrainTiming({}, served=4.0, total=6.0),
        ONE: RetrainTiming({}, served=5.0, total=12.0),
        TWO: RetrainTiming({}, served=5.0, total=10.0),
    }

    served, finished, scaled = goals(timings)

    assert served[1:] == ("5.0 / 4.0 s = 1.25x", True)
    assert finished[1:] == ("12.0 / 6.0 s = 2.00x", False)
    assert scaled[1:] == ("10.0 / 12.0 s = 0.83x", True)
