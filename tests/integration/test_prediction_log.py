"""The prediction log on real servers: every answered listing lands in the Redis Stream once
(one entry per request), with the request it came in, the version that answered and what it
answered; the monitor worker then drains it into Parquet, each listing once."""

import json
import time

import requests

from shared.contracts import CHALLENGE_EXAMPLE
from shared.prediction_store import read_predictions
from shared.queues import connect
from shared.settings import Settings
from tests.integration.conftest import MONITOR_DRAIN_SECONDS

STREAM = Settings().prediction_log_stream


def _logged_since(redis, start_id: str) -> list[dict]:
    """Each listing logged after start_id, with its request's fields and its own answer."""
    logged = []
    for _, raw in redis.xrange(STREAM, min=f"({start_id}", max="+"):
        entry = {k.decode(): v.decode() for k, v in raw.items()}
        for listing, answer in zip(
            json.loads(entry["listings"]), json.loads(entry["answers"]), strict=True
        ):
            logged.append({**entry, "listing": listing, **answer})
    return logged


def test_a_thousand_answered_listings_are_each_logged_once(stack, gateway, served_champion):
    redis = connect(stack.settings.redis_url)
    last = redis.xrevrange(STREAM, count=1)
    start_id = last[0][0].decode() if last else "0-0"
    # A run's own ids, far from any other test's: 200 single listings and 8 batches of 100.
    ids = list(range(9_000_000, 9_001_000))
    answers: dict[int, tuple[str, str]] = {}  # id -> (request id, category answered)
    with requests.Session() as session:
        for listing_id in ids[:200]:
            request_id = f"single-{listing_id}"
            reply = session.post(
                f"{gateway}/predict",
                json={**CHALLENGE_EXAMPLE, "id": listing_id},
                headers={"X-Request-ID": request_id},
                timeout=10,
            )
            assert reply.status_code == 200, reply.text
            assert reply.headers["X-Request-ID"] == request_id
            answers[listing_id] = (request_id, reply.json()["price_category"])
        for batch in range(8):
            chunk = ids[200 + batch * 100 : 300 + batch * 100]
            request_id = f"batch-{batch}"
            body = [{**CHALLENGE_EXAMPLE, "id": i, "accommodates": 1 + i % 8} for i in chunk]
            reply = session.post(
                f"{gateway}/predict", json=body, headers={"X-Request-ID": request_id}, timeout=10
            )
            assert reply.status_code == 200, reply.text
            for answer in reply.json()["predictions"]:
                answers[answer["id"]] = (request_id, answer["price_category"])

    deadline = time.monotonic() + 10  # written by each process's log thread, not the request
    while len(logged := _logged_since(redis, start_id)) < len(ids):
        assert time.monotonic() < deadline, f"{len(logged)} of {len(ids)} logged"
        time.sleep(0.1)
    time.sleep(0.5)  # nothing more arrives: no listing is logged twice
    logged = [e for e in _logged_since(redis, start_id) if e["listing"]["id"] in answers]

    by_id = {entry["listing"]["id"]: entry for entry in logged}
    assert len(logged) == len(by_id) == len(ids)
    for listing_id, (request_id, category) in answers.items():
        entry = by_id[listing_id]
        assert entry["request_id"] == request_id
        assert entry["price_category"] == category
        assert entry["model_version"] == served_champion
        assert float(entry["latency_ms"]) > 0
        probabilities = entry["probabilities"]
        assert max(probabilities, key=probabilities.get) == category
    batch_entry = by_id[ids[-1]]
    assert batch_entry["listing"]["accommodates"] == 1 + ids[-1] % 8

    # The monitor worker drains the stream on its schedule, every 2 s here.
    wanted = {str(i) for i in ids}

    def stored() -> list[dict]:
        table = read_predictions(stack.settings.monitor_dir)
        return [row for row in table.to_pylist() if row["id"] in wanted]

    deadline = time.monotonic() + 30
    while len(rows := stored()) < len(ids):
        assert time.monotonic() < deadline, f"{len(rows)} of {len(ids)} in Parquet"
        time.sleep(0.5)
    time.sleep(3 * MONITOR_DRAIN_SECONDS)  # later drains add nothing: each listing once
    rows = stored()
    assert sorted(int(row["id"]) for row in rows) == ids
    for row in rows:
        listing_id = int(row["id"])
        request_id, category = answers[listing_id]
        assert (row["request_id"], row["price_category"]) == (request_id, category)
        assert row["model_version"] == served_champion
        assert row["neighbourhood"] == CHALLENGE_EXAMPLE["neighbourhood"]
        assert row["accommodates"] == by_id[listing_id]["listing"]["accommodates"]
