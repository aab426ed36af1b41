"""`make soak`: a month of traffic compressed into minutes, against the real gateway (gunicorn,
2 processes), Redis and monitor worker, with the faults a month brings; the harness knows the
truth and checks it.

A month: 3,000,000 predicted listings (single requests, small and large batches up to 10,000)
and 100,000 realised prices (by prediction id and by listing id, late ones, a prediction priced
twice, unknown ones, out-of-range ones), drift checks on their schedule, a 20 s Redis freeze
under single requests at 50/s, and the monitor worker killed (SIGKILL) mid-run. Then:

- every answered listing is in the Parquet store exactly once;
- every price joined the prediction it belongs to (or is "unknown" when it names none);
- the live accuracy the monitor reports equals the one recomputed here from the answers;
- measured along the way: Redis' peak memory, the monitor's peak memory (proportional set
  size of the worker and its work-horse), the oldest entry waiting in either stream, drains
  that failed.

`python -m bench.soak` writes bench/soak.md; `--scale 0.05` runs 1/20 of the volume (what the
test suite runs, tests/reliability/test_soak.py).
"""

import argparse
import itertools
import logging
import math
import os
import random
import re
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.compute as pc
import requests
import yaml
from redis import Redis
from rq import Worker

from bench import join, targets
from services.stack import processes
from shared.cleaning import clean_listings
from shared.contracts import Listing
from shared.feedback import FEEDBACK_SCHEMA
from shared.prediction_store import read_predictions
from shared.queues import MONITOR_QUEUE, connect, queue
from shared.schema import price_category
from shared.settings import PROJECT_DIR

log = logging.getLogger(__name__)

RESULTS = PROJECT_DIR / "bench" / "soak.md"
DRAIN_SECONDS = 5  # the monitor's drain interval here (60 s in a deployment)
DRIFT_SECONDS = 30  # drift checks, compressed from hourly
LISTINGS_PER_SECOND = 3_000  # the driver's pace: a month's 3,000,000 in about 17 minutes
FREEZE_SECONDS = 20
FREEZE_REQUESTS_PER_SECOND = 50
SENDERS = 2  # threads predicting at once (the gateway has 2 processes)
ID_LENGTH = 33  # a prediction id's request part: 8 digits, "-", 24 hex digits


@dataclass(frozen=True)
class Volume:
    listings: int
    prices: int

    @classmethod
    def month(cls, scale: float = 1.0) -> "Volume":
        return cls(int(3_000_000 * scale), int(100_000 * scale))


@dataclass
class Priced:
    """A prediction the harness will send a price for, and what it knows about it."""

    prediction_id: str
    listing_id: str
    category: str  # what the gateway answered
    price: float  # the listing's real price, from the shipped data


@dataclass
class Truth:
    """What the harness sent and was answered: requests by prediction id (listings each), the
    predictions it may price, and per price sent what it must join."""

    requests: dict[str, int] = field(default_factory=dict)
    priceable: list[Priced] = field(default_factory=list)
    by_listing_id: dict[str, Priced] = field(default_factory=dict)  # ids predicted once
    expected: dict[str, list[str | None]] = field(default_factory=dict)  # feedback id -> joins
    prices: dict[str, list[tuple[float, Priced | None]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def listings(self) -> int:
        return sum(self.requests.values())


@dataclass
class Samples:
    """Peaks sampled every half second while the traffic runs."""

    redis_bytes: int = 0
    monitor_bytes: int = 0
    monitor_idle_bytes: int = 0  # before any traffic: the modules it loads
    monitor_peak_job: str = ""  # the job the monitor ran at its peak
    oldest_waiting: dict[str, float] = field(default_factory=dict)  # stream -> seconds
    oldest_outside_faults: dict[str, float] = field(default_factory=dict)


@dataclass
class Soak:
    """The processes of one soak and where they answer."""

    bench: targets.Bench
    gateway: str
    redis: Redis
    redis_pid: int
    monitor: processes.SupervisedWorker
    env: dict[str, str]
    folder: Path
    faults: list[tuple[float, float]] = field(default_factory=list)  # (start, end) times

    @property
    def streams(self) -> dict[str, str]:
        return {"predictions": "price-category:predictions", "feedback": "price-category:feedback"}


def _listing_pool(size: int, seed: int) -> list[tuple[dict[str, Any], float]]:
    """Listings of the shipped data as requests, with their real prices."""
    raw = pd.read_csv(PROJECT_DIR / "data/raw/listings.csv.gz", low_memory=False)
    clean, _ = clean_listings(raw)
    sample = clean.sample(min(size, len(clean)), random_state=seed)
    fields = list(Listing.model_fields)
    pool = []
    for row in sample.to_dict("records"):
        listing = Listing.model_validate({name: row.get(name) for name in fields if name in row})
        pool.append((listing.model_dump(mode="json"), float(row["price"])))
    return pool


def start(folder: Path, volume: Volume) -> Soak:
    """Redis, MLflow, a champion, the monitor worker and the gateway, as the bench starts them;
    whatever started is stopped again if one of them does not start."""
    bench = targets.Bench(folder)
    try:
        return _start(bench, folder, volume)
    except BaseException:
        bench.close()
        raise


def _start(bench: targets.Bench, folder: Path, volume: Volume) -> Soak:
    targets.start_backing_services(bench)
    targets.train_champion(bench)
    monitor_config = folder / "monitor.yaml"
    document = yaml.safe_load((PROJECT_DIR / "config/monitor.yaml").read_text())
    # A day of the compressed month (its 30th part, at least 30 s): what a check reads.
    day_seconds = max(volume.listings / LISTINGS_PER_SECOND / 30, 30)
    document["drift"]["window_hours"] = day_seconds / 3600
    monitor_config.write_text(yaml.safe_dump(document))
    env = {
        **bench.env,
        "PRICE_CATEGORY_MONITOR_DIR": str(folder / "monitor"),
        "PRICE_CATEGORY_FEEDBACK_DIR": str(folder / "feedback"),
        "PRICE_CATEGORY_MONITOR_DRAIN_SECONDS": str(DRAIN_SECONDS),
        "PRICE_CATEGORY_MONITOR_DRIFT_SECONDS": str(DRIFT_SECONDS),
        "PRICE_CATEGORY_MONITOR_CONFIG": str(monitor_config),
        # The month tests the log and the monitor: LightGBM's trees predict (no 20 s of gcc).
        "PRICE_CATEGORY_COMPILED_TREES": "false",
    }
    bench.env = env
    monitor = processes.SupervisedWorker(MONITOR_QUEUE, folder / "workers", env, "worker-monitor")
    bench._stack.callback(monitor.stop)
    targets.start_gateway(bench, "gateway", workers=2, settings=env)
    redis_pid = bench.pids["redis"]
    gateway = bench.urls["gateway"].removesuffix("/predict")
    return Soak(bench, gateway, connect(env["REDIS_URL"]), redis_pid, monitor, env, folder)


def _sizes(volume: Volume, seed: int) -> Iterator[int]:
    """Request sizes until the volume is reached: a tenth of the listings in single requests,
    a fifth in batches of 2-100, the rest in batches of 1,000-10,000."""
    rng = random.Random(seed)
    left = volume.listings
    while left > 0:
        draw = rng.random()
        size = (
            1 if draw < 0.55 else rng.randint(2, 100) if draw < 0.95 else rng.randint(1_000, 10_000)
        )
        size = min(size, left)
        left -= size
        yield size


class Driver:
    """Sends the month's predictions at a steady pace from SENDERS threads."""

    def __init__(self, soak: Soak, volume: Volume, truth: Truth, seed: int) -> None:
        self.soak, self.volume, self.truth = soak, volume, truth
        self.pool = _listing_pool(30_000, seed)
        self.sizes = _sizes(volume, seed)
        self.ids = itertools.count()
        self.sent = 0
        self.lock = threading.Lock()
        self.paused = threading.Event()
        self.in_flight = threading.Semaphore(SENDERS)
        self.started = time.monotonic()
        self.price_share = volume.prices / max(volume.listings, 1)
        self.rng = random.Random(seed)
        self.errors: list[str] = []

    def _next(self) -> int | None:
        with self.lock:
            size = next(self.sizes, None)
            if size is not None:
                self.sent += size
            return size

    def predict(self, session: requests.Session, size: int) -> None:
        with self.lock:
            numbers = [next(self.ids) for _ in range(size)]
        picks = [self.pool[n % len(self.pool)] for n in numbers]
        body = [{**listing, "id": f"L{n}"} for n, (listing, _) in zip(numbers, picks, strict=True)]
        reply = session.post(
            f"{self.soak.gateway}/predict",
            json=body[0] if size == 1 else body,
            headers={"X-Request-ID": "soak"},  # every client the same: never a join key
            timeout=60,
        )
        if reply.status_code != 200:
            self.errors.append(f"{reply.status_code} {reply.text[:200]}")
            return
        answers = [reply.json()] if size == 1 else reply.json()["predictions"]
        with self.truth.lock:
            self.truth.requests[answers[0]["prediction_id"][:ID_LENGTH]] = size
            for answer, (_, price) in zip(answers, picks, strict=True):
                if self.rng.random() < self.price_share * 1.3:  # more than needed: some repeat
                    priced = Priced(
                        answer["prediction_id"], answer["id"], answer["price_category"], price
                    )
                    self.truth.priceable.append(priced)
                    self.truth.by_listing_id[priced.listing_id] = priced

    def _sender(self) -> None:
        with requests.Session() as session:
            while (size := self._next()) is not None:
                while self.paused.is_set():
                    time.sleep(0.05)
                with self.in_flight:
                    self.predict(session, size)
                ahead = self.sent / LISTINGS_PER_SECOND - (time.monotonic() - self.started)
                if ahead > 0:
                    time.sleep(ahead)

    def run(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self._sender, daemon=True) for _ in range(SENDERS)]
        for thread in threads:
            thread.start()
        return threads

    def pause(self) -> None:
        """No sender starts a request from now on; back once those in flight have ended."""
        self.paused.set()
        for _ in range(SENDERS):
            self.in_flight.acquire()
        for _ in range(SENDERS):
            self.in_flight.release()


class PriceSender:
    """Sends realised prices for what was answered, in bodies of up to 200, at the pace that
    spreads the month's prices over its predictions: most by prediction id, some by listing
    id, some late (for long-ago predictions), a prediction priced twice (the later price
    counts), names of predictions never made, prices outside the training ranges."""

    BODY = 200

    def __init__(self, soak: Soak, volume: Volume, truth: Truth, driver: Driver, seed: int) -> None:
        self.soak, self.volume, self.truth, self.driver = soak, volume, truth, driver
        self.rng = random.Random(seed + 1)
        self.sent = 0
        self.next_index = 0
        self.errors: list[str] = []
        self.in_flight = threading.Lock()  # held while a body is sent; a fault may hold it

    def _item(self) -> tuple[dict[str, Any], Priced | None]:
        draw = self.rng.random()
        priceable = self.truth.priceable
        if draw < 0.03:  # names nothing ever predicted
            if self.rng.random() < 0.5:
                return {"prediction_id": f"20200101-{'0' * 24}-0", "price": 120}, None
            return {"id": f"never-{self.sent}", "price": 120}, None
        if draw < 0.08 and self.next_index > 10:  # late: a prediction from long ago, again
            priced = priceable[self.rng.randrange(self.next_index // 2)]
        else:
            priced = priceable[self.next_index]
            self.next_index += 1
        price = priced.price
        if draw > 0.98:
            price = 25_000.0  # outside validate's ranges: joined, never trained on
        if 0.85 < draw <= 0.98:  # by listing id: each predicted once here
            return {"id": priced.listing_id, "price": price}, priced
        return {"prediction_id": priced.prediction_id, "price": price}, priced

    def send_one(self, session: requests.Session, final: bool) -> bool:
        """One body of prices for what is answered by now (once the predictions are all
        answered, whatever is left); False when nothing is left to send."""
        with self.truth.lock:
            available = len(self.truth.priceable) - self.next_index
            wanted = min(self.BODY, self.volume.prices - self.sent)
            if final:
                wanted = min(wanted, available)
            elif available < wanted + 10:
                return True  # wait for more answers
            if wanted <= 0:
                return False
            items, seen = [], set()
            for _ in range(wanted):
                item, priced = self._item()
                key = item.get("prediction_id") or item.get("id")
                if key in seen:
                    continue  # one body names a prediction once (a second is a 422)
                seen.add(key)
                items.append((item, priced))
        with self.in_flight:
            reply = session.post(
                f"{self.soak.gateway}/feedback",
                json=[item for item, _ in items],
                headers={"Authorization": f"Bearer {self.soak.env['RETRAIN_TOKEN']}"},
                timeout=60,
            )
        if reply.status_code != 202:
            self.errors.append(f"{reply.status_code} {reply.text[:200]}")
            return True
        feedback_id = reply.json()["feedback_id"]
        with self.truth.lock:
            self.truth.expected[feedback_id] = [p.prediction_id if p else None for _, p in items]
            self.truth.prices[feedback_id] = [(item["price"], p) for item, p in items]
        self.sent += len(items)
        return True

    def run(self, answered_all: threading.Event) -> None:
        pace = self.volume.prices / max(self.volume.listings / LISTINGS_PER_SECOND, 1)
        with requests.Session() as session:
            while self.send_one(session, final=answered_all.is_set()):
                time.sleep(0 if answered_all.is_set() else self.BODY / pace)


def _pss_bytes(root: int) -> int:
    """Proportional set size of a process and its children (a worker and its work-horse):
    shared pages counted once, as a container's memory limit counts them."""
    total = 0
    for pid in [root, *_children(root)]:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        found = re.search(r"^Pss:\s+(\d+) kB", text, re.MULTILINE)
        total += int(found[1]) * 1024 if found else 0
    return total


def _children(pid: int) -> list[int]:
    try:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(child) for child in found] + [g for c in found for g in _children(int(c))]


def sample(soak: Soak, samples: Samples, stop: threading.Event) -> None:
    """Every half second: Redis' memory, the monitor's, the oldest entry in each stream."""
    probe = connect(soak.env["REDIS_URL"])
    while not stop.wait(0.5):
        try:
            monitor = _pss_bytes(soak.monitor.pid)
            if monitor > samples.monitor_bytes:
                samples.monitor_bytes = monitor
                workers = Worker.all(connection=probe, queue=queue(probe, MONITOR_QUEUE))
                samples.monitor_peak_job = ", ".join(
                    str(w.get_current_job_id()) for w in workers if w.get_current_job_id()
                )
            samples.redis_bytes = max(samples.redis_bytes, int(probe.info("memory")["used_memory"]))
            for name, stream in soak.streams.items():
                first: Any = probe.xrange(stream, count=1)  # [(id, fields)]
                age = time.time() - int(bytes(first[0][0]).split(b"-")[0]) / 1000 if first else 0.0
                samples.oldest_waiting[name] = max(samples.oldest_waiting.get(name, 0.0), age)
                if not any(start - 5 <= time.time() <= end + 60 for start, end in soak.faults):
                    outside = samples.oldest_outside_faults
                    outside[name] = max(outside.get(name, 0.0), age)
        except Exception as error:  # noqa: BLE001 - Redis frozen on purpose: sampled later
            log.debug("sample skipped: %s", error)


def freeze_redis(soak: Soak, driver: Driver, prices: PriceSender) -> int:
    """Freeze Redis (SIGSTOP) for FREEZE_SECONDS while single requests go on at 50/s; the
    predictions answered meanwhile. No price is sent meanwhile: POST /feedback needs Redis
    (a 503 to retry), which this soak does not test."""
    driver.pause()
    prices.in_flight.acquire()
    start = time.time()
    os.kill(soak.redis_pid, signal.SIGSTOP)
    answered = 0
    try:
        with requests.Session() as session:
            while time.time() - start < FREEZE_SECONDS:
                driver.predict(session, 1)
                answered += 1
                time.sleep(max(0.0, start + answered / FREEZE_REQUESTS_PER_SECOND - time.time()))
    finally:
        os.kill(soak.redis_pid, signal.SIGCONT)
        soak.faults.append((start, time.time()))
        prices.in_flight.release()
        driver.paused.clear()
    return answered


def kill_monitor(soak: Soak) -> None:
    """SIGKILL the monitor worker and its work-horse (its process group), as the OOM killer
    would; the supervisor starts it again, as `make run` and compose do."""
    start = time.time()
    os.killpg(soak.monitor.pid, signal.SIGKILL)
    soak.faults.append((start, start + 30))


@dataclass
class Result:
    """What a soak measured and what its checks found (empty lists: nothing wrong)."""

    volume: Volume
    seconds: float
    answered_listings: int
    stored_listings: int
    prices_sent: int
    samples: Samples
    monitor_scores: dict[str, Any]
    expected_scores: dict[str, Any]
    drift_checks: int
    failed_drains: list[str]
    dropped: float
    dead_letters: int
    problems: list[str]

    def lines(self) -> list[str]:
        mib = 1024 * 1024
        waiting, outside = self.samples.oldest_waiting, self.samples.oldest_outside_faults
        monitor, here = self.monitor_scores, self.expected_scores
        rows = [
            (
                "Redis peak memory (used_memory)",
                f"{self.samples.redis_bytes / mib:.0f} MiB",
                "<= 256 MB",
            ),
            (
                "monitor peak memory (worker and work-horse, PSS; idle before the traffic)",
                f"{self.samples.monitor_bytes / mib:.0f} MiB, during "
                f"{self.samples.monitor_peak_job or 'no job'} "
                f"({self.samples.monitor_idle_bytes / mib:.0f} MiB)",
                "<= 512 MB",
            ),
            *(
                (
                    f"oldest {name} entry waiting, outside the faults (overall)",
                    f"{outside.get(name, 0):.1f} s ({waiting.get(name, 0):.1f} s)",
                    f"<= {2 * DRAIN_SECONDS} s (two drain intervals)",
                )
                for name in ("predictions", "feedback")
            ),
            (
                "monitor jobs failed (a drain over its timeout fails)",
                f"{len(self.failed_drains)} {self.failed_drains[:3]}",
                "the killed one at most",
            ),
            (
                "answered listings in Parquet",
                f"{self.stored_listings:,} of {self.answered_listings:,}",
                "all, each once",
            ),
            (
                "listings the log dropped / entries dead-lettered",
                f"{self.dropped:.0f} / {self.dead_letters}",
                "0 / 0",
            ),
            (
                "live accuracy: monitor / recomputed here",
                f"{monitor.get('accuracy')} / {here.get('accuracy')}",
                "equal",
            ),
            (
                "prices judged, unknown: monitor / here",
                f"{monitor.get('judged')}, {monitor.get('unknown')} / "
                f"{here.get('judged')}, {here.get('unknown')}",
                "equal",
            ),
        ]
        return [
            f"Volume: {self.answered_listings:,} answered listings and {self.prices_sent:,} "
            f"realised prices in {self.seconds / 60:.1f} minutes; {self.drift_checks} drift "
            f"checks, drains every {DRAIN_SECONDS} s, a {FREEZE_SECONDS} s Redis freeze under "
            f"{FREEZE_REQUESTS_PER_SECOND} single requests/s, the monitor SIGKILLed once.",
            "",
            "| | measured | goal |",
            "|---|---|---|",
            *(f"| {what} | {measured} | {goal} |" for what, measured, goal in rows),
            "",
            "Checks: " + ("all passed" if not self.problems else "; ".join(self.problems)),
        ]


def _supervise(monitor: processes.SupervisedWorker, stop: threading.Event) -> None:
    while not stop.wait(0.5):
        monitor.ensure_running()


def _wait_until_drained(soak: Soak, truth: Truth, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    outcomes = list(truth.expected)
    while time.monotonic() < deadline:
        waiting = sum(soak.redis.xlen(stream) for stream in soak.streams.values())
        joined = all(
            requests.get(f"{soak.gateway}/feedback/{f}", timeout=10).json().get("state") == "joined"
            for f in outcomes[-20:]
        )
        if waiting == 0 and joined:
            return
        time.sleep(1)
    log.warning("not drained within %.0f s", timeout)


def _check_store(soak: Soak, truth: Truth, problems: list[str]) -> int:
    """Every answered listing in Parquet exactly once; the listings stored."""
    import pyarrow.dataset as ds

    ids = ds.dataset(str(soak.folder / "monitor"), format="parquet").to_table(
        columns=["prediction_id"]
    )["prediction_id"]
    stored = len(ids)
    if pc.count_distinct(ids).as_py() != stored:
        problems.append(f"{stored - pc.count_distinct(ids).as_py()} listings stored twice")
    counts = pc.value_counts(pc.utf8_slice_codeunits(ids, 0, ID_LENGTH))
    found = dict(
        zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True)
    )
    missing = {r: n for r, n in truth.requests.items() if found.get(r) != n}
    if missing:
        problems.append(
            f"{len(missing)} requests not stored whole, e.g. {list(missing.items())[:3]}"
        )
    unknown = set(found) - set(truth.requests)
    if unknown:
        problems.append(f"{len(unknown)} stored requests never answered here")
    return stored


def _check_feedback(soak: Soak, truth: Truth, problems: list[str]) -> None:
    """Every price joined the prediction the harness knows it names (or none)."""
    stored = read_predictions(soak.folder / "feedback", schema=FEEDBACK_SCHEMA).to_pandas()
    groups = stored.groupby("feedback_id")["prediction_id"].apply(
        lambda ids: sorted("None" if pd.isna(i) else str(i) for i in ids)
    )
    wrong = []
    for feedback_id, expected in truth.expected.items():
        got = Counter(groups.get(feedback_id, []))
        missed = Counter(str(e) for e in expected) - got
        if missed or got - Counter(str(e) for e in expected):
            wrong.append((feedback_id, dict(missed), dict(got - Counter(str(e) for e in expected))))
    if wrong:
        problems.append(
            f"{len(wrong)} of {len(truth.expected)} feedback bodies joined otherwise: "
            f"e.g. expected but not joined {list(wrong[0][1].items())[:3]}, "
            f"joined but not expected {list(wrong[0][2].items())[:3]}"
        )


def _expected_scores(truth: Truth) -> dict[str, Any]:
    """Accuracy over each priced prediction's latest price, as the monitor must compute it."""
    latest: dict[str, tuple[float, Priced]] = {}
    received = unknown = 0
    for prices in truth.prices.values():  # in the order sent
        for price, priced in prices:
            received += 1
            if priced is None:
                unknown += 1
            else:
                latest[priced.prediction_id] = (price, priced)
    hits = [price_category(price) == priced.category for price, priced in latest.values()]
    accuracy = sum(hits) / len(hits) if hits else None
    return {"received": received, "judged": len(latest), "unknown": unknown, "accuracy": accuracy}


def run_soak(volume: Volume, folder: Path, seed: int = 0) -> Result:
    """Start the processes, drive the month with its faults, drain, check; the result."""
    soak = start(folder, volume)
    truth, samples = Truth(), Samples()
    stop = threading.Event()
    background = [
        threading.Thread(target=_supervise, args=(soak.monitor, stop), daemon=True),
        threading.Thread(target=sample, args=(soak, samples, stop), daemon=True),
    ]
    try:
        time.sleep(2 * DRAIN_SECONDS)  # a drain or two of nothing
        samples.monitor_idle_bytes = _pss_bytes(soak.monitor.pid)
        for thread in background:
            thread.start()
        started = time.monotonic()
        driver = Driver(soak, volume, truth, seed)
        prices = PriceSender(soak, volume, truth, driver, seed)
        sent_all = threading.Event()
        price_thread = threading.Thread(target=prices.run, args=(sent_all,), daemon=True)
        price_thread.start()
        senders = driver.run()
        faults = [
            (0.4, lambda: freeze_redis(soak, driver, prices)),
            (0.7, lambda: kill_monitor(soak)),
        ]
        while any(thread.is_alive() for thread in senders):
            if faults and driver.sent >= faults[0][0] * volume.listings:
                faults.pop(0)[1]()
            time.sleep(0.2)
        sent_all.set()
        price_thread.join()
        _wait_until_drained(soak, truth, timeout=300)
        seconds = time.monotonic() - started
        stop.set()

        problems = [f"prediction errors: {driver.errors[:3]}"] if driver.errors else []
        problems += [f"feedback errors: {prices.errors[:3]}"] if prices.errors else []
        stored = _check_store(soak, truth, problems)
        _check_feedback(soak, truth, problems)
        monitor = requests.get(f"{soak.gateway}/monitor", timeout=10).json()
        expected = _expected_scores(truth)
        scores = monitor["feedback"] or {}
        for name in ("received", "judged", "unknown"):
            if scores.get(name) != expected[name]:
                problems.append(f"monitor {name} {scores.get(name)}, expected {expected[name]}")
        if expected["accuracy"] is None or not math.isclose(
            scores.get("accuracy", -1), expected["accuracy"], abs_tol=1e-12
        ):
            problems.append(
                f"live accuracy {scores.get('accuracy')}, expected {expected['accuracy']}"
            )
        # The stream's own count: the gateway's counters restart with its processes.
        dropped = monitor["streams"]["predictions"]["dropped"]
        if dropped:
            problems.append(f"{dropped:.0f} answered listings dropped from the log")
        dead = sum(s["dead_lettered"] for s in monitor["streams"].values())
        failed = queue(soak.redis, MONITOR_QUEUE).failed_job_registry.get_job_ids()
        drift = soak.redis.get("monitor:drift:latest")
        return Result(
            volume=volume,
            seconds=seconds,
            answered_listings=truth.listings,
            stored_listings=stored,
            prices_sent=prices.sent,
            samples=samples,
            monitor_scores=scores,
            expected_scores=expected,
            drift_checks=_drift_checks(soak),
            failed_drains=failed,
            dropped=dropped,
            dead_letters=dead,
            problems=problems if drift is not None else [*problems, "no drift check ran"],
        )
    finally:
        stop.set()
        soak.bench.close()


def _drift_checks(soak: Soak) -> int:
    registry = queue(soak.redis, MONITOR_QUEUE).finished_job_registry
    return sum("drift" in job_id for job_id in registry.get_job_ids())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0, help="share of a month's volume")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    with tempfile.TemporaryDirectory(prefix="soak-") as folder:
        result = run_soak(Volume.month(args.scale), Path(folder))
    joins = {rows: join.measure(rows) for rows in (300_000, 1_000_000)}
    lines = [
        "# A month of traffic, compressed (`make soak`)",
        "",
        *result.lines(),
        "",
        "## One realised price against a month of stored predictions (bench.join)",
        "",
        *join.lines(joins),
        "",
    ]
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))  # noqa: T201 - a benchmark prints its numbers
    return 0 if not result.problems else 1


if __name__ == "__main__":
    sys.exit(main())
