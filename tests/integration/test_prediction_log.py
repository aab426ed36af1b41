"""The prediction log on real servers: every answered listing, with the prediction id its
answer carried, the request it came in, the version that answered and what it answered, is
drained by the monitor worker into Parquet once, and leaves the Redis Stream once drained."""

import time

import requests

from shared.contracts import CHALLENGE_EXAMPLE
from shared.prediction_store import read_predictions
from shared.queues import connect
from shared.settings import Settings
from tests.integration.conftest import MONITOR_DRAIN_SECONDS

STREAM = Settings().prediction_log_stream


def test_a_thousand_answered_listings_are_each_logged_once(stack, gateway, served_champion):
    # A run's own ids, far from any other test's: 200 single listings and 8 batches of 100.
    ids = list(range(9_000_000, 9_001_000))
    answers: dict[int, tuple[str, str, str]] = {}  # id -> (prediction id, request id, category)
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
            answer = reply.json()
            answers[listing_id] = (answer["prediction_id"], request_id, answer["price_category"])
        for batch in range(8):
            chunk = ids[200 + batch * 100 : 300 + batch * 100]
            request_id = f"batch-{batch}"
            body = [{**CHALLENGE_EXAMPLE, "id": i, "accommodates": 1 + i % 8} for i in chunk]
            reply = session.post(
                f"{gateway}/predict", json=body, headers={"X-Request-ID": request_id}, timeout=10
            )
            assert reply.status_code == 200, reply.text
            for answer in reply.json()["predictions"]:
                answers[answer["id"]] = (
                    answer["prediction_id"],
                    request_id,
                    answer["price_category"],
                )
    assert len({prediction_id for prediction_id, _, _ in answers.values()}) == len(ids)

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
        assert (row["prediction_id"], row["request_id"], row["price_category"]) == answers[
            listing_id
        ]
        assert row["model_version"] == served_champion
        assert row["latency_ms"] > 0
        assert row["neighbourhood"] == CHALLENGE_EXAMPLE["neighbourhood"]
        probabilities = {c: row[f"probability_{c}"] for c in ("Low", "Mid", "High", "Lux")}
        assert max(probabilities, key=probabilities.get) == row["price_category"]
    batched = next(row for row in rows if int(row["id"]) == ids[-1])
    assert batched["accommodates"] == 1 + ids[-1] % 8

    # Drained entries leave the stream: what waits there is only what is not drained yet.
    redis = connect(stack.settings.redis_url)
    assert redis.xlen(STREAM) < 10  # at most the other tests' latest predictions
    streams = requests.get(f"{gateway}/monitor", timeout=10).json()["streams"]
    assert streams["predictions"]["capacity"] == stack.settings.prediction_log_max_listings
    assert streams["predictions"]["waiting"] < 10_000
    assert streams["predictions"]["drained_until"] > time.time() - 30
