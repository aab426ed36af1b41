"""/metrics under gunicorn reports the whole gateway: the requests every worker process
answered, whichever process answers the scrape, also after one is killed; and the pipeline
beside it (jobs, workers, runs, stage times, the champion's age)."""

import os
import re
import signal
import threading
import time

import requests

from services.stack import processes
from shared.contracts import CHALLENGE_EXAMPLE

PREDICTED = 'gateway_requests_total{endpoint="/predict",method="POST",status="200"}'


def _scrape(gateway: str) -> dict[str, float]:
    text = requests.get(f"{gateway}/metrics", timeout=10, headers={"Connection": "close"}).text
    return {name: float(value) for name, value in re.findall(r"^(\S+) (\S+)$", text, re.M)}


def _predict_from_two_clients(gateway: str, each: int) -> None:
    """Batches from two clients at once, new connection each: both worker processes answer."""
    body = [{**CHALLENGE_EXAMPLE, "id": i} for i in range(2_000)]  # tens of ms each

    def client() -> None:
        for _ in range(each):
            reply = requests.post(
                f"{gateway}/predict", json=body, headers={"Connection": "close"}, timeout=30
            )
            assert reply.status_code == 200

    threads = [threading.Thread(target=client) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_every_scrape_counts_every_process_and_a_killed_one_still_counts(
    stack, gateway, served_champion, running_gateway
):
    master = running_gateway.master
    before = _scrape(gateway).get(PREDICTED, 0)
    _predict_from_two_clients(gateway, each=15)
    scrapes = [_scrape(gateway).get(PREDICTED) for _ in range(8)]
    assert scrapes == [before + 30] * 8  # not one process's share, whichever answered

    workers = processes.children(master.pid)
    assert len(workers) >= 2  # one per core
    os.kill(workers[0], signal.SIGKILL)  # gunicorn starts another in its place
    processes.wait_until(
        lambda: len(set(processes.children(master.pid)) - {workers[0]}) == len(workers),
        30,
        "gunicorn replacing its killed worker",
    )
    _predict_from_two_clients(gateway, each=5)
    assert [_scrape(gateway).get(PREDICTED) for _ in range(4)] == [before + 40] * 4


def test_the_pipeline_is_on_metrics_beside_the_gateway(stack, gateway, served_champion):
    def complete(scraped: dict[str, float]) -> bool:
        # A worker registers itself when it starts; a gateway process that loaded the champion
        # before its decision was tagged describes it again at its next poll (5 s here).
        return (
            scraped.get('rq_workers{queue="monitor"}', 0) >= 1
            and "pipeline_seconds_since_promotion" in scraped
        )

    deadline = time.monotonic() + 30
    while not complete(scraped := _scrape(gateway)):
        assert time.monotonic() < deadline, scraped
        time.sleep(1)
    for queue in ("prep", "train", "explain", "monitor"):
        assert scraped[f'rq_workers{{queue="{queue}"}}'] >= 1
        for state in ("queued", "started", "scheduled", "deferred", "finished", "failed"):
            assert f'rq_jobs{{queue="{queue}",state="{state}"}}' in scraped
    assert scraped['rq_jobs{queue="train",state="finished"}'] >= 1  # the champion's run
    assert scraped['pipeline_runs{state="finished"}'] >= 1
    for stage in ("prep", "validate", "train", "select", "explain", "archive"):
        assert scraped[f'pipeline_stage_seconds{{stage="{stage}"}}'] > 0
    assert 0 < scraped["pipeline_seconds_since_promotion"] < 24 * 3600
    assert scraped["gateway_model_version"] == float(served_champion)
