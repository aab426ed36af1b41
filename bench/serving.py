"""Serving, side by side for the same champion model: our gateway (alone and behind its
buffering front), MLflow's server, the notebook-era app, and the gateway's own work in-process
layer by layer (bench.layers); single listings under load and one big batch."""

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from bench import challenger_cost, measure, report, targets
from bench.layers import Layers, measure_batch_layers, measure_layers
from bench.swap import measure_swaps
from bench.wrk import LoadResult
from shared.contracts import CHALLENGE_EXAMPLE
from shared.settings import Settings

CLIENTS = (1, 4, 8)
# Each batch measurement: the stack it loads, and the threads it predicts one request with.
BATCH_STACKS = {
    "gateway, every core": "gateway",
    "gateway, 1 thread": "gateway-1thread",
    # The logged model predicts with n_jobs=1, and `mlflow models serve` has no setting that
    # gives one request more threads (its --workers are processes, one request each).
    "mlflow-serve, 1 thread": "mlflow-serve",
}
SINGLE_STACKS = ("gateway", "mlflow-serve", "notebook")
# The gateways under test: their processes, and their settings beyond the stack's.
GATEWAYS = {
    "gateway": (1, {}),
    "gateway-1thread": (1, {"PRICE_CATEGORY_BATCH_THREADS": "1"}),
    "gateway-2proc": (2, {}),
    "gateway-nolog": (1, {"PRICE_CATEGORY_PREDICTION_LOG": "false"}),
    # The only one holding a challenger (bench.challenger_cost): it follows an alias of its own.
    "gateway-challenger": (1, {"PRICE_CATEGORY_CHALLENGER_ALIAS": challenger_cost.ALIAS}),
}
BATCH = 10_000
Goal = tuple[str, str, bool]


@dataclass
class ServingResults:
    loads: dict[tuple[str, int], LoadResult]
    layers: Layers
    batch: dict[str, float]  # listings per second, by BATCH_STACKS label
    batch_layers: dict[str, float]  # milliseconds of each step of a batch, in-process
    memory: dict[str, float]  # resident MiB with the champion loaded
    swap: dict[str, float]  # seconds from the promotion message to every process serving


def single_listing(bench: targets.Bench, seconds: int, runs: int) -> dict:
    loads: dict[tuple[str, int], LoadResult] = {}
    for stack in SINGLE_STACKS:
        body = measure.body_for(stack, CHALLENGE_EXAMPLE)
        for clients in CLIENTS:
            loads[(stack, clients)] = measure.median_load(
                bench.urls[stack], body, clients, seconds, runs
            )
            logging.info("%s x%d: %s", stack, clients, loads[(stack, clients)])
    # Two gateway processes (how throughput scales with processes): the same processes reached
    # directly and through the buffering front, run after run in turn, for what the front costs.
    pair = {name: bench.urls[name] for name in ("gateway-2proc", "gateway-2proc+front")}
    for clients in (4, 8):
        measured = measure.interleaved_loads(pair, CHALLENGE_EXAMPLE, clients, seconds, runs)
        loads |= {(name, clients): load for name, load in measured.items()}
    # What the prediction log and a challenger cost an answer: the same gateway with the log
    # on and off, and with a challenger, in turn.
    in_turn = {
        "gateway-log": bench.urls["gateway"],
        "gateway-nolog": bench.urls["gateway-nolog"],
        "gateway-challenger": bench.urls["gateway-challenger"],
    }
    measured = measure.interleaved_loads(in_turn, CHALLENGE_EXAMPLE, 1, seconds, runs)
    loads |= {(name, 1): load for name, load in measured.items()}
    return loads


def measure_serving(folder: Path, seconds: int, runs: int) -> ServingResults:
    """Start every stack on loopback, load each, stop them all."""
    folder.mkdir(parents=True, exist_ok=True)
    bench = targets.Bench(folder)
    try:
        targets.start_backing_services(bench)
        pipeline = targets.train_champion(bench)
        challenger = targets.register_challenger(bench, challenger_cost.ALIAS)
        for name, (workers, settings) in GATEWAYS.items():
            targets.start_gateway(bench, name, workers, settings)
        targets.wait_for_challenger(bench, "gateway-challenger", challenger)
        targets.start_front(bench, "gateway-2proc+front", behind="gateway-2proc")
        targets.start_mlflow_serve(bench)
        targets.start_notebook_app(bench)
        layers = measure_layers(pipeline, repeats=2000)
        listings = measure.request_listings(BATCH)
        batch_layers = measure_batch_layers(pipeline, listings, repeats=runs + 2)
        loads = single_listing(bench, seconds, runs)
        batch = {
            label: measure.batch_rate(
                bench.urls[stack], measure.body_for(stack, listings), BATCH, repeats=3
            )
            for label, stack in BATCH_STACKS.items()
        }
        memory = {
            name: measure.resident_mib(pid)
            for name, pid in bench.pids.items()
            if name in ("gateway", "gateway-2proc", "mlflow-serve", "notebook")
        }
        swap = measure_swaps(
            Settings(
                redis_url=bench.env["REDIS_URL"],
                mlflow_tracking_uri=bench.env["MLFLOW_TRACKING_URI"],
            ),
            bench.model_uri,
            {
                name: (targets.gateway_log(bench, name), n)
                for name, (n, _) in GATEWAYS.items()
                if name != "gateway-challenger"
            },
            runs,
        )
    finally:
        bench.close()
    return ServingResults(loads, layers, batch, batch_layers, memory, swap)


def goals(results: ServingResults) -> list[Goal]:
    loads, floor, batch = results.loads, results.layers.gateway_work, results.batch
    g1, m1, g4 = loads[("gateway", 1)], loads[("mlflow-serve", 1)], loads[("gateway", 4)]
    m4, g2 = loads[("mlflow-serve", 4)], loads[("gateway-2proc", 4)]
    fronted = loads[("gateway-2proc+front", 4)]
    logged, unlogged = loads[("gateway-log", 1)], loads[("gateway-nolog", 1)]
    log_cost = logged.p50_ms - unlogged.p50_ms
    overhead = g1.p50_ms - floor.p50_ms
    gateway_1, mlflow_1 = batch["gateway, 1 thread"], batch["mlflow-serve, 1 thread"]
    front_p50 = fronted.p50_ms / g2.p50_ms - 1  # > 0: slower through the front
    front_rps = fronted.requests_per_second / g2.requests_per_second - 1  # < 0: fewer
    return [
        (
            "gateway p50 over HTTP - its own work's p50 in-process <= 0.3 ms (1 client)",
            f"{g1.p50_ms:.2f} - {floor.p50_ms:.2f} = {overhead:.2f} ms",
            overhead <= 0.3,
        ),
        (
            "one listing, the model in-process (record to probabilities) <= 0.05 ms",
            f"{results.layers.model.p50_ms:.3f} ms",
            results.layers.model.p50_ms <= 0.05,
        ),
        (
            "gateway p99 <= 1.5x p50 (1 client)",
            f"{g1.p99_ms:.2f} / {g1.p50_ms:.2f} ms = {g1.p99_ms / g1.p50_ms:.2f}x",
            g1.p99_ms <= 1.5 * g1.p50_ms,
        ),
        (
            "gateway p50 <= 0.5x MLflow's (1 client)",
            f"{g1.p50_ms:.2f} / {m1.p50_ms:.2f} ms = {g1.p50_ms / m1.p50_ms:.2f}x",
            g1.p50_ms <= 0.5 * m1.p50_ms,
        ),
        (
            "gateway rps >= 3x MLflow serve's at 4 clients, 1 process each, 0 errors",
            f"{g4.requests_per_second:,.0f} / {m4.requests_per_second:,.0f} = "
            f"{g4.requests_per_second / m4.requests_per_second:.2f}x, {g4.errors} errors",
            g4.requests_per_second >= 3 * m4.requests_per_second and g4.errors == 0,
        ),
        (
            "1 process: rps at 4 clients >= 0.9x at 1",
            f"{g4.requests_per_second:,.0f} / {g1.requests_per_second:,.0f} = "
            f"{g4.requests_per_second / g1.requests_per_second:.2f}x",
            g4.requests_per_second >= 0.9 * g1.requests_per_second,
        ),
        (
            "2 processes >= 1.8x 1 process (4 clients)",
            f"{g2.requests_per_second:,.0f} / {g4.requests_per_second:,.0f} = "
            f"{g2.requests_per_second / g4.requests_per_second:.2f}x",
            g2.requests_per_second >= 1.8 * g4.requests_per_second,
        ),
        (
            "the front costs <= 10% of p50 and of rps (2 processes, 4 clients)",
            f"p50 {front_p50:+.1%}, rps {front_rps:+.1%}, {fronted.errors} errors",
            front_p50 <= 0.10 and front_rps >= -0.10 and fronted.errors == 0,
        ),
        (
            "batch of 10,000, 1 thread each: gateway >= 2x MLflow serve",
            f"{gateway_1:,.0f} / {mlflow_1:,.0f} listings/s = {gateway_1 / mlflow_1:.2f}x",
            gateway_1 >= 2 * mlflow_1,
        ),
        (
            f"batch of 10,000 on every core ({os.cpu_count()}) >= 150,000 listings/s",
            f"{batch['gateway, every core']:,.0f}/s",
            batch["gateway, every core"] >= 150_000,
        ),
        (
            "the prediction log adds <= 0.1 ms to p50 (1 client, on and off in turn)",
            f"{logged.p50_ms:.2f} - {unlogged.p50_ms:.2f} = {log_cost:+.2f} ms",
            log_cost <= 0.1,
        ),
        *challenger_cost.goals(loads[("gateway-challenger", 1)], logged),
        (
            "every gateway process serves a new champion <= 2 s after the promotion message "
            "(2 processes)",
            f"{results.swap['gateway-2proc']:.2f} s",
            results.swap["gateway-2proc"] <= 2.0,
        ),
    ]


def layer_lines(layers: Layers, over_http: LoadResult) -> list[str]:
    """Each layer of a single-listing request (1 client), with what it adds to the one below."""
    rows = [
        ("the model: one record to probabilities", layers.model),
        ("+ the gateway's own work: parse, contract, answer, encode", layers.gateway_work),
        ("+ Flask: the WSGI app, no socket", layers.flask),
        ("+ gunicorn and the socket: over HTTP, wrk, 1 client", over_http),
    ]
    lines = ["| layer | p50 ms | p99 ms | adds to p50 |", "|---|---|---|---|"]
    below = 0.0
    for name, result in rows:
        lines.append(
            f"| {name} | {result.p50_ms:.2f} | {result.p99_ms:.2f} | "
            f"{result.p50_ms - below:+.2f} ms |"
        )
        below = result.p50_ms
    return lines


def sections(results: ServingResults) -> dict[str, list[str]]:
    return {
        "Single listing, layer by layer (in this process, then over HTTP)": layer_lines(
            results.layers, results.loads[("gateway", 1)]
        ),
        "Single listing over HTTP": report.load_table(results.loads),
        "Batch of 10,000 listings in one request": report.as_lines(
            [{"stack": k, "listings per second": f"{v:,.0f}"} for k, v in results.batch.items()]
        ),
        "Batch of 10,000 listings, step by step (in this process, one thread)": [
            "Each step alone, then the whole (parse to encoded answer, below Flask) with the "
            "garbage collector paused, as the gateway pauses it for a request, and running.",
            "",
            *report.as_lines(
                [
                    {"step": k, "ms": f"{v:.1f}", "listings per second": f"{BATCH / v * 1000:,.0f}"}
                    for k, v in results.batch_layers.items()
                ]
            ),
        ],
        "Live swap: the promotion message to every process serving the new version": [
            "The same logged model registered again and promoted; each gateway idle. The "
            "time covers the alias lookup, the download from MLflow, loading (skops), the "
            "check on the challenge's example and reading the version's record.",
            "",
            *report.as_lines(
                [
                    {"gateway": name, "processes": GATEWAYS[name][0], "seconds": f"{sec:.2f}"}
                    for name, sec in results.swap.items()
                ]
            ),
        ],
        "Memory with the champion loaded (proportional set size)": report.as_lines(
            [
                {"process": k, "PSS MiB (master + workers)": f"{v:.0f}"}
                for k, v in results.memory.items()
            ]
        ),
    }
