"""The serving benchmark's arithmetic: goals that name the numbers they divide, and a swap
counted per process from the gateway's log."""

import json

from bench.layers import Layers
from bench.serving import ServingResults, goals
from bench.swap import serving_lines
from bench.wrk import LoadResult


def _logged(message: str) -> str:
    return json.dumps({"logger": "services.gateway.champion", "message": message}) + "\n"


def test_a_swap_counts_the_processes_serving_exactly_that_version(tmp_path):
    log = tmp_path / "gateway.log"
    assert serving_lines(log, "2") == 0  # not started yet
    log.write_text(
        _logged("serving champion version 1 (was None)") * 2
        + _logged("serving champion version 12 (was 1)")
        + _logged("serving champion version 2 (was 1)")
    )

    assert serving_lines(log, "2") == 1
    assert serving_lines(log, "1") == 2
    assert serving_lines(log, "12") == 1
    assert serving_lines(log) == 4  # any version


def _results(swap_seconds: float) -> ServingResults:
    def load(p50: float, p99: float, rps: float) -> LoadResult:
        return LoadResult(p50, p99, rps, 0)

    loads = {
        ("gateway", 1): load(1.2, 1.5, 800),
        ("gateway", 4): load(5.0, 7.0, 780),
        ("mlflow-serve", 1): load(3.5, 6.0, 270),
        ("mlflow-serve", 4): load(15.0, 70.0, 250),
        ("gateway-2proc", 4): load(3.0, 6.0, 1200),
        ("gateway-2proc+front", 4): load(3.1, 6.3, 1170),
        ("gateway-log", 1): load(1.25, 1.5, 790),
        ("gateway-nolog", 1): load(1.1, 1.4, 850),
        ("gateway-challenger", 1): load(1.28, 1.7, 780),
    }
    layers = Layers(load(0.3, 0.4, 3000), load(0.6, 0.7, 1600), load(0.9, 1.0, 1100))
    batch = {"gateway, every core": 70_000, "gateway, 1 thread": 50_000}
    batch["mlflow-serve, 1 thread"] = 45_000
    return ServingResults(loads, layers, batch, {}, {}, {"gateway-2proc": swap_seconds})


def test_goals_name_both_numbers_and_say_no_when_missed():
    by_goal = {name: (measured, met) for name, measured, met in goals(_results(2.5))}

    overhead = next(v for k, v in by_goal.items() if k.startswith("gateway p50 over HTTP"))
    assert overhead == ("1.20 - 0.60 = 0.60 ms", False)
    model = next(v for k, v in by_goal.items() if k.startswith("one listing, the model"))
    assert model == ("0.300 ms", False)
    assert by_goal["gateway p99 <= 1.5x p50 (1 client)"] == ("1.50 / 1.20 ms = 1.25x", True)
    rps = next(v for k, v in by_goal.items() if k.startswith("gateway rps >= 3x"))
    assert rps == ("780 / 250 = 3.12x, 0 errors", True)
    batch = next(v for k, v in by_goal.items() if "1 thread each" in k)
    assert batch == ("50,000 / 45,000 listings/s = 1.11x", False)
    logged = next(v for k, v in by_goal.items() if "prediction log" in k)
    assert logged == ("1.25 - 1.10 = +0.15 ms", False)
    challenger_p50 = next(v for k, v in by_goal.items() if "challenger adds <= 0.05 ms" in k)
    assert challenger_p50 == ("1.280 - 1.250 = +0.030 ms", True)
    challenger_p99 = next(v for k, v in by_goal.items() if "challenger adds <= 10%" in k)
    assert challenger_p99 == ("1.70 / 1.50 ms = 1.13x", False)
    swap = next(v for k, v in by_goal.items() if "new champion" in k)
    assert swap == ("2.50 s", False)
    faster = next(row[1:] for row in goals(_results(1.9)) if "new champion" in row[0])
    assert faster == ("1.90 s", True)
