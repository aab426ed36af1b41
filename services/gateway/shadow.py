"""The challenger tried on live traffic: a share of prediction requests scored by it too, after
the champion's answer has been sent, and how the two compared tallied in Redis.

The route picks a request (one random draw) and queues its listings and the champion's categories;
once PASS_LISTINGS listings wait (or the oldest has waited PASS_WAIT_SECONDS), the request that
brought the last of them scores them all in one pass once its response is written (Werkzeug's
call_on_close: gunicorn closes the response after sending it). A client never waits for the
challenger and never sees its answer. One pass for many requests, not one each: scored one by
one, the challenger took a millisecond or more a listing (the blend's two forests, cold in the
caches), and the request after each waited for it: at a 10% share that added 0.29 ms to a
single listing's p50 (bench.challenger_cost); in passes of 64 it costs tens of microseconds a
listing, once every few hundred requests. Each gateway process adds up its tallies in memory;
a thread of its own adds them to the challenger version's Redis hash about once a second (one
pipelined round trip), so every process and every host count into one record that outlives
them; the same thread scores listings left waiting longer than PASS_WAIT_SECONDS (no picked
request came to score them: the traffic is light, so the pass costs nobody). Redis away costs
nothing but the tallies of that moment: they are kept and sent again, up to a bound.
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
# A scoring pass waits for this many listings, or for its oldest to have waited this long.
PASS_LISTINGS = 64
PASS_WAIT_SECONDS = 1.0
# Upper bounds (ms) of a scoring pass's time buckets: a pass of 64 listings takes a few
# milliseconds, a big batch's up to a second.
LATENCY_BOUNDS_MS = (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 250, 500, 1000, 2500)
# Tallied fields a process keeps while Redis is away, at most, before it drops them (logged).
MAX_UNSENT_FIELDS = 10_000


def latency_field(ms: float) -> str:
    """The latency bucket a request's challenger time falls in ("le:<bound>" or "le:inf")."""
    bound = next((b for b in LATENCY_BOUNDS_MS if ms <= b), None)
    return f"le:{bound:g}" if bound is not None else "le:inf"


def compare(
    champion: Sequence[str], challenger: Sequence[str], ms: float, requests: int = 1
) -> Counter[str]:
    """One scoring pass's tallies: its requests and listings, how many got the same category,
    each champion category's listings and where the challenger put them, and its time."""
    counts: Counter[str] = Counter(
        {
            "passes": 1,
            "requests": requests,
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
    category, the challenger's time (a listing's on average; a pass's mean, and the bucket
    bounds its p50 and p99 fall under)."""
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
        "scoring_ms": _scoring(count, listings),
    }


def _scoring(count: Counter[str], listings: int) -> dict[str, Any]:
    passes = count["passes"]
    if not passes:
        return {"per_listing": None, "passes": 0, "pass_mean": None, "pass_p50_at_most": None,
                "pass_p99_at_most": None}  # fmt: skip
    bounds = [*LATENCY_BOUNDS_MS, float("inf")]
    cumulative, quantiles = 0.0, {}
    for bound in bounds:
        cumulative += count[latency_field(bound)]
        for name, share in (("pass_p50_at_most", 0.5), ("pass_p99_at_most", 0.99)):
            if name not in quantiles and cumulative >= share * passes:
                quantiles[name] = bound if bound != float("inf") else None
    return {
        "per_listing": count["us"] / 1000 / listings,
        "passes": passes,
        "pass_mean": count["us"] / 1000 / passes,
        **quantiles,
    }


class Shadow:
    """Picks the requests the challenger also scores, scores them, and sends the tallies."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        share: float,
        challenger: Callable[[], LoadedModel | None],
        draw: Callable[[], float] = random.random,
        pass_listings: int = PASS_LISTINGS,
    ) -> None:
        self.redis, self.prefix, self.share = redis, prefix, share
        self.challenger = challenger  # the challenger served now, if any
        self.draw = draw
        self.pass_listings = pass_listings
        self._lock = threading.Lock()
        self._waiting: list[tuple[list[dict[str, Any]], list[str]]] = []  # records, categories
        self._waiting_for: LoadedModel | None = None  # the challenger they wait for
        self._waiting_since = 0.0
        self._unsent: dict[str, Counter[str]] = {}  # tally key -> fields to add
        self._stop = threading.Event()

    def pick(self) -> LoadedModel | None:
        """The challenger, for the share of requests it scores too; None for the others."""
        model = self.challenger()
        if model is None or self.draw() >= self.share:
            return None
        return model

    def add(self, model: LoadedModel, records: list[dict[str, Any]], champion: list[str]) -> bool:
        """Queue a picked request's listings for the challenger; True when a pass is due (the
        caller runs score_waiting once its answer is sent)."""
        with self._lock:
            if self._waiting_for is not model:  # a new challenger: the old one's are moot
                self._waiting, self._waiting_for = [], model
            if not self._waiting:
                self._waiting_since = time.monotonic()
            self._waiting.append((records, champion))
            waiting = sum(len(records) for records, _ in self._waiting)
            stale = time.monotonic() - self._waiting_since >= PASS_WAIT_SECONDS
            return waiting >= self.pass_listings or stale

    def score_waiting(self) -> None:
        """Score every waiting listing with the challenger in one pass and tally how it
        compared. Never raises: whatever goes wrong, the champion's answers were sent."""
        with self._lock:
            waiting, model = self._waiting, self._waiting_for
            self._waiting = []
        if not waiting or model is None:
            return
        records = [record for request, _ in waiting for record in request]
        champion = [category for _, categories in waiting for category in categories]
        try:
            started = time.perf_counter()
            proba, _ = predict_matrix(model.predictor, records, 1)
            ms = (time.perf_counter() - started) * 1000
            labels = [PRICE_CATEGORIES[i] for i in proba.argmax(axis=1)]
            counts = compare(champion, labels, ms, requests=len(waiting))
        except Exception:  # noqa: BLE001 - a challenger failing is tallied nowhere, only logged
            log.exception("challenger v%s could not score %d listings", model.version, len(records))
            return
        with self._lock:
            self._unsent.setdefault(tally_key(self.prefix, model.version), Counter()).update(counts)

    def start(self) -> None:
        threading.Thread(target=self._send_forever, name="challenger-tally", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _send_forever(self) -> None:
        while not self._stop.wait(FLUSH_SECONDS):
            if self._left_waiting():
                self.score_waiting()
            self.send()

    def _left_waiting(self) -> bool:
        with self._lock:
            waited = time.monotonic() - self._waiting_since
            return bool(self._waiting) and waited >= PASS_WAIT_SECONDS

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
