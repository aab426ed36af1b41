"""The challenger tried on live traffic: a share of prediction requests scored by it too, after
the champion's answer has been sent, and how the two compared tallied in Redis.

The route picks a request (one random draw) and hands the listings and the champion's categories
to `score`, which runs once the response is written (Werkzeug's call_on_close: gunicorn closes
the response after sending it), so a client never waits for the challenger and never sees its
answer. Each gateway process adds up its tallies in memory; a thread of its own adds them to the
challenger version's Redis hash about once a second (one pipelined round trip), so every process
and every host count into one record that outlives them. Redis away costs nothing but the
tallies of that moment: they are kept and sent again, up to a bound.
"""

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

from services.gateway.champion import LoadedModel
from shared.challenger import tally_key
from shared.modeling import predict_matrix
from shared.schema import PRICE_CATEGORIES

log = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0
# Upper bounds (ms) of the challenger's latency buckets: one listing takes a fraction of a
# millisecond, a big batch up to a second.
LATENCY_BOUNDS_MS = (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 250, 500, 1000, 2500)
# Tallied fields a process keeps while Redis is away, at most, before it drops them (logged).
MAX_UNSENT_FIELDS = 10_000


def latency_field(ms: float) -> str:
    """The latency bucket a request's challenger time falls in ("le:<bound>" or "le:inf")."""
    bound = next((b for b in LATENCY_BOUNDS_MS if ms <= b), None)
    return f"le:{bound:g}" if bound is not None else "le:inf"


def compare(champion: Sequence[str], challenger: Sequence[str], ms: float) -> Counter[str]:
    """One request's tallies: the request, its listings, how many got the same category, each
    champion category's listings and where the challenger put them, and the latency."""
    counts: Counter[str] = Counter(
        {
            "requests": 1,
            "listings": len(champion),
            latency_field(ms): 1,
            "us": round(ms * 1000),  # microseconds: Redis adds whole numbers exactly
        }
    )
    for theirs, mine in zip(champion, challenger, strict=True):
        counts[f"champion:{theirs}"] += 1
        if theirs == mine:
            counts["agreed"] += 1
        else:
            counts[f"disagreed:{theirs}:{mine}"] += 1
    return counts


def summary(fields: Mapping[str, str]) -> dict[str, Any]:
    """What a tally hash says (GET /model/challenger): agreement, disagreement per champion
    category, the challenger's latency (mean, and the bucket bounds p50 and p99 fall under)."""
    count = Counter({k: int(v) for k, v in fields.items() if k != "since"})
    listings, requests = int(count["listings"]), int(count["requests"])
    per_category = {}
    for category in PRICE_CATEGORIES:
        seen = int(count[f"champion:{category}"])
        moved = {
            other: int(count[f"disagreed:{category}:{other}"])
            for other in PRICE_CATEGORIES
            if count[f"disagreed:{category}:{other}"]
        }
        per_category[category] = {
            "listings": seen,
            "disagreed": sum(moved.values()),
            "disagreement": sum(moved.values()) / seen if seen else None,
            "challenger_said": moved,
        }
    return {
        "since": fields.get("since"),
        "requests": requests,
        "listings": listings,
        "agreement": count["agreed"] / listings if listings else None,
        "by_champion_category": per_category,
        "latency_ms": _latency(count, requests),
    }


def _latency(count: Counter[str], requests: int) -> dict[str, Any]:
    if not requests:
        return {"mean": None, "p50_at_most": None, "p99_at_most": None}
    bounds = [*LATENCY_BOUNDS_MS, float("inf")]
    cumulative, quantiles = 0.0, {}
    for bound in bounds:
        cumulative += count[latency_field(bound)]
        for name, share in (("p50_at_most", 0.5), ("p99_at_most", 0.99)):
            if name not in quantiles and cumulative >= share * requests:
                quantiles[name] = bound if bound != float("inf") else None
    return {"mean": count["us"] / 1000 / requests, **quantiles}


class Shadow:
    """Picks the requests the challenger also scores, scores them, and sends the tallies."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        share: float,
        challenger: Callable[[], LoadedModel | None],
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.redis, self.prefix, self.share = redis, prefix, share
        self.challenger = challenger  # the challenger served now, if any
        self.draw = draw
        self._lock = threading.Lock()
        self._unsent: dict[str, Counter[str]] = {}  # tally key -> fields to add
        self._stop = threading.Event()

    def pick(self) -> LoadedModel | None:
        """The challenger, for the share of requests it scores too; None for the others."""
        model = self.challenger()
        if model is None or self.draw() >= self.share:
            return None
        return model

    def score(self, model: LoadedModel, records: list[dict[str, Any]], champion: list[str]) -> None:
        """Score a request's listings with the challenger and tally how it compared. Never
        raises: whatever goes wrong, the champion's answer was sent already."""
        try:
            started = time.perf_counter()
            proba, _ = predict_matrix(model.predictor, records, 1)
            ms = (time.perf_counter() - started) * 1000
            labels = [PRICE_CATEGORIES[i] for i in proba.argmax(axis=1)]
            counts = compare(champion, labels, ms)
        except Exception:  # noqa: BLE001 - a challenger failing is tallied nowhere, only logged
            log.exception("challenger v%s could not score a request", model.version)
            return
        with self._lock:
            self._unsent.setdefault(tally_key(self.prefix, model.version), Counter()).update(counts)

    def start(self) -> None:
        threading.Thread(target=self._send_forever, name="challenger-tally", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _send_forever(self) -> None:
        while not self._stop.wait(FLUSH_SECONDS):
            self.send()

    def send(self) -> None:
        """Add what was tallied since the last send to Redis; kept for the next one on failure."""
        with self._lock:
            unsent, self._unsent = self._unsent, {}
        if not unsent:
            return
        try:
            with self.redis.pipeline(transaction=False) as pipe:
                for key, counts in unsent.items():
                    for name, value in counts.items():
                        pipe.hincrby(key, name, value)
                pipe.execute()
        except RedisError as error:
            log.warning("challenger tallies not sent (%s); kept for the next try", error)
            self._keep(unsent)

    def _keep(self, unsent: dict[str, Counter[str]]) -> None:
        with self._lock:
            for key, counts in unsent.items():
                self._unsent.setdefault(key, Counter()).update(counts)
            if sum(len(counts) for counts in self._unsent.values()) > MAX_UNSENT_FIELDS:
                log.warning("challenger tallies dropped: Redis has been away too long")
                self._unsent = {}


def tally_fields(redis: Redis, prefix: str, version: str) -> dict[str, str]:
    """A challenger version's tally hash as it is in Redis."""
    fields: dict[bytes, bytes] = redis.hgetall(tally_key(prefix, version))  # type: ignore[assignment]
    return {key.decode(): value.decode() for key, value in fields.items()}


def read_tally(redis: Redis, prefix: str, version: str) -> dict[str, Any]:
    return summary(tally_fields(redis, prefix, version))
