"""The champion model held in memory, swapped atomically when a new one is promoted.

Requests read `current` once and keep that object: a swap never disturbs a request in
flight. New versions are loaded in a background thread, woken by the promotion message on
Redis or, if that was missed, by a periodic check of the alias.
"""

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from redis import Redis
from redis.exceptions import RedisError
from sklearn.pipeline import Pipeline

from shared.explaining import build_explainer

log = logging.getLogger(__name__)

# Until a champion is served, look this often: the first promotion, or MLflow coming up beside
# a starting gateway, should serve at once (two small requests to MLflow per look).
UNSERVED_POLL_SECONDS = 0.5
# The compile's niceness: about a tenth of a core against busy predictions (19, a sixtieth,
# took minutes while the test suite ran beside it).
COMPILE_NICENESS = 10


@dataclass
class LoadedModel:
    """A champion version ready to answer: the pipeline plus what /model reports about it."""

    version: str
    pipeline: Pipeline
    info: dict[str, Any] = field(default_factory=dict)
    loaded_at: float = field(default_factory=time.time)
    # The same pipeline with its trees compiled, once proven identical (ChampionCache sets it
    # in one assignment; a request reads `predictor` once).
    compiled: Pipeline | None = None
    _explainer: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def predictor(self) -> Pipeline:
        """What predicts: the compiled twin when there is one (same answers, sooner)."""
        return self.compiled if self.compiled is not None else self.pipeline

    def explainer(self) -> Any:
        """The SHAP explainer, built on first use (most requests never ask for one)."""
        with self._lock:
            if self._explainer is None:
                self._explainer = build_explainer(self.pipeline)
            return self._explainer


class ChampionSource(Protocol):
    """Where served models come from (the MLflow registry in production): the version an
    alias points at, and that version loaded."""

    def alias_version(self) -> str | None: ...

    def load(self, version: str) -> LoadedModel: ...


class ChampionCache:
    """Holds a served model and keeps it in step with its alias: the champion's, or the
    challenger's (which, unlike the champion, stops being held when its alias is removed)."""

    def __init__(
        self,
        source: ChampionSource,
        poll_seconds: float,
        compile_trees: Callable[[Pipeline], Pipeline | None] | None = None,
        drop_when_unset: bool = False,
        role: str = "champion",
    ) -> None:
        self.role = role  # what its logs call the model
        self.source = source
        self.poll_seconds = poll_seconds
        # The champion keeps serving when its alias is gone (predictions must not fail); a
        # challenger whose alias was removed is no longer tried.
        self.drop_when_unset = drop_when_unset
        # Builds a served pipeline's proven compiled twin (shared.compiled_trees), in a thread
        # of its own after each swap: the plain pipeline serves meanwhile.
        self.compile_trees = compile_trees
        self.current: LoadedModel | None = None
        self.last_error: str | None = None
        self._refresh_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.first_attempt = threading.Event()  # set once the first load has been tried
        self._threads: list[threading.Thread] = []
        self.on_swap: Callable[[LoadedModel], None] = lambda model: None
        self.on_compiled: Callable[[LoadedModel], None] = lambda model: None
        self.on_dropped: Callable[[], None] = lambda: None

    def refresh(self) -> bool:
        """Load the alias's version if it is not the one served; True when a swap happened."""
        with self._refresh_lock:
            version = None
            try:
                version = self.source.alias_version()
                if version is None and self.drop_when_unset and self.current is not None:
                    log.info(
                        "%s version %s dropped: its alias is unset", self.role, self.current.version
                    )
                    self.current = None
                    self.on_dropped()
                    return True
                if version is None or (self.current and self.current.version == version):
                    self._complete_description()
                    self.last_error = None
                    return False
                loaded = self.source.load(version)
            except Exception as error:  # noqa: BLE001 - keep serving the old model
                which = f"version {version}: " if version else ""
                self.last_error = f"{which}{type(error).__name__}: {error}"
                log.warning("%s refresh failed: %s", self.role, self.last_error)
                return False
            previous = self.current.version if self.current else None
            self.current = loaded  # one reference assignment: the swap is atomic
            self.last_error = None
            log.info("serving %s version %s (was %s)", self.role, version, previous)
            self._served(loaded)
            return True

    def _served(self, loaded: LoadedModel) -> None:
        self.on_swap(loaded)
        if self.compile_trees is not None:
            threading.Thread(
                target=self._compile, args=(loaded,), name="compile-trees", daemon=True
            ).start()

    def _compile(self, loaded: LoadedModel) -> None:
        """Compile the served model's trees at a low CPU priority (this thread and the compiler
        it starts: predictions keep most of the cores; not the lowest, which a busy host never
        lets finish), then predict with them."""
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), COMPILE_NICENESS)
        try:
            compiled = self.compile_trees(loaded.pipeline) if self.compile_trees else None
        except Exception as error:  # noqa: BLE001 - no compiler, a failed build: LightGBM serves
            log.warning(
                "version %s: trees not compiled (%s); LightGBM predicts", loaded.version, error
            )
            return
        if compiled is not None:
            loaded.compiled = compiled
            log.info("version %s predicts with its compiled trees", loaded.version)
            if self.current is loaded:
                self.on_compiled(loaded)

    def _complete_description(self) -> None:
        """Describe the served version again while its promotion is not in its description:
        select tags the decision just after moving the alias (so that a select killed in
        between decides again), and a process may load the version in between."""
        describe = getattr(self.source, "describe", None)
        served = self.current
        if describe is not None and served is not None and not served.info.get("promoted_at"):
            served.info = describe(served.version)

    def start(self, redis: Redis, channel: str) -> None:
        """Refresh in the background: on each promotion message and every poll interval."""
        self._threads = [
            threading.Thread(target=self._poll, name="champion-poll", daemon=True),
            threading.Thread(
                target=self._listen, args=(redis, channel), daemon=True, name="champion-listen"
            ),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def serve_saved(self) -> None:
        """Serve the source's saved copy of the last champion (a restarted gateway's), if it
        keeps one and nothing is served yet: the alias is asked for next, as always."""
        saved = getattr(self.source, "saved", None)
        with self._refresh_lock:
            loaded = saved() if saved is not None and self.current is None else None
            if loaded is not None:
                self.current = loaded
                log.info("serving champion version %s from its local copy", loaded.version)
                self._served(loaded)

    def _poll(self) -> None:
        self.serve_saved()
        while not self._stop.is_set():
            self.refresh()
            self.first_attempt.set()
            self._wake.wait(self.next_poll_seconds())
            self._wake.clear()

    def next_poll_seconds(self) -> float:
        """How long until the alias is looked at again: soon while no champion is served (an
        outage to end at once); a missing challenger is the usual state, not an outage."""
        unserved = self.current is None and not self.drop_when_unset
        return min(self.poll_seconds, UNSERVED_POLL_SECONDS) if unserved else self.poll_seconds

    def _listen(self, redis: Redis, channel: str) -> None:
        """Wake the poller on every promotion message; resubscribe when Redis comes back."""
        while not self._stop.is_set():
            try:
                subscription = redis.pubsub(ignore_subscribe_messages=True)
                subscription.subscribe(channel)
                while not self._stop.is_set():
                    if subscription.get_message(timeout=1.0):
                        self._wake.set()
            except (RedisError, OSError) as error:
                log.warning("promotion channel unavailable (%s); retrying", error)
                self._stop.wait(1.0)
