"""Admission control for expensive requests: at most N at once across the gateway's processes.

A gunicorn worker explaining 25 listings is busy for about a second; with every worker doing
so, plain predictions wait behind them (four clients looping explanations took a steady
client's p50 from 2.5 ms to 1.2 s). Explanations therefore take one of N slots, N below the
number of worker processes, so some process is always free to predict; an explanation that
finds every slot taken is answered at once with 429 and Retry-After rather than queued (a
sync worker that waited would be a worker not predicting). A big batch takes a slot to
predict on every core; with none free it predicts on its own process's core, never refused
(bulk scoring keeps working, and takes no core from the other processes).

A slot is an exclusive flock on one of N files in a folder every gateway process of a host
shares (gunicorn's master makes it before forking: services.gateway.gunicorn_conf). The kernel
drops a lock when its holder's file is closed, by exit or by kill -9: a dead worker never keeps
a slot.
"""

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# gunicorn's master puts the folder's path here for its workers (see its config module).
SLOTS_FOLDER = "PRICE_CATEGORY_WORK_SLOTS_DIR"


class NoSlotFree(Exception):
    """Every slot is held by another request."""


def default_slots(cores: int | None = None) -> int:
    """Leave one core to predictions: cores - 1, at least 1."""
    return max(1, (cores or os.cpu_count() or 1) - 1)


def slots_folder() -> Path:
    """The folder the gateway processes of this host share (gunicorn's master's), or one of
    this process's own when it runs alone."""
    given = os.environ.get(SLOTS_FOLDER)
    if given:
        return Path(given)
    folder = Path(tempfile.mkdtemp(prefix="gateway-slots-"))
    os.environ[SLOTS_FOLDER] = str(folder)  # later apps of this process share it
    return folder


class WorkSlots:
    """size slots, each a lock file in folder."""

    def __init__(self, folder: Path, size: int) -> None:
        self.folder = folder
        self.paths = [folder / f"slot-{index}" for index in range(size)]

    @contextmanager
    def held(self) -> Iterator[None]:
        """Hold a free slot for the block; NoSlotFree, at once, when none is."""
        with self.held_if_free() as held:
            if not held:
                raise NoSlotFree
            yield

    @contextmanager
    def held_if_free(self) -> Iterator[bool]:
        """Hold a free slot for the block if there is one: True when held."""
        self.folder.mkdir(parents=True, exist_ok=True)  # in case a /tmp cleaner took it
        for path in self.paths:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(descriptor)
                continue
            try:
                yield True
            finally:
                os.close(descriptor)  # closing drops the lock
            return
        yield False
