"""Redis locks that serialise work across processes and machines: the promotion critical section.

A lock expires (a holder killed mid-way never blocks the next one for long), so a holder must
check it still owns the lock right before it acts (the fencing check), not only when it took it.
"""

from collections.abc import Iterator
from contextlib import contextmanager, suppress

from redis import Redis
from redis.exceptions import LockError
from redis.lock import Lock

# Long enough for registering a version and scoring the champion (seconds); short enough that
# a select killed inside the section delays the next one by at most this.
PROMOTION_LOCK_SECONDS = 120


class LockLostError(Exception):
    """The lock expired while its holder worked: another may hold it now, so act on nothing.
    Transient: the stage is retried."""


@contextmanager
def promotion_lock(redis: Redis, model_name: str, wait_seconds: float) -> Iterator[Lock]:
    """Hold the promotion lock of one registered model; waits up to wait_seconds for it."""
    lock = redis.lock(
        f"lock:promotion:{model_name}",
        timeout=PROMOTION_LOCK_SECONDS,
        blocking_timeout=wait_seconds,
    )
    if not lock.acquire():
        raise LockLostError(f"promotion lock of {model_name} not free after {wait_seconds:.0f}s")
    try:
        yield lock
    finally:
        with suppress(LockError):  # expired meanwhile: nothing of ours to release
            lock.release()


def fence(lock: Lock) -> None:
    """Fail unless the lock is still ours, and give it a full lifetime for the next step."""
    try:
        lock.reacquire()
    except LockError as error:
        raise LockLostError(f"lost {lock.name!r} before acting: {error}") from None
