"""A worker losing Redis while its job runs waits for the horse and carries on."""

import os
import subprocess
import sys

import pytest
from redis.exceptions import BusyLoadingError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.workers.redis_loss import run_despite_redis_loss


def test_a_job_that_loses_no_redis_runs_as_it_would():
    ran = []
    assert run_despite_redis_loss(lambda: ran.append(1), lambda: 0, lambda: True) is True
    assert ran == [1]


@pytest.mark.parametrize("lost", [BusyLoadingError("loading"), RedisTimeoutError("timed out")])
def test_redis_lost_mid_job_waits_for_the_horse_and_does_not_raise(lost, monkeypatch):
    monkeypatch.setattr("services.workers.redis_loss.PING_SECONDS", 0.01)
    horse = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)"])

    def execute() -> None:
        raise lost

    pings = iter([BusyLoadingError("still loading"), None])

    def ping() -> None:  # Redis loading its data at the first ping, answering at the second
        if (answer := next(pings)) is not None:
            raise answer

    assert run_despite_redis_loss(execute, lambda: horse.pid, ping) is False
    assert next(pings, "all used") == "all used"  # it pinged until Redis answered
    # Reaped by the call: the horse had ended before it returned.
    with pytest.raises(ChildProcessError):
        os.waitpid(horse.pid, os.WNOHANG)
    horse.returncode = 0  # reaped above; tell Popen so it does not wait for it again


def test_other_errors_are_not_swallowed():
    def execute() -> None:
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        run_despite_redis_loss(execute, lambda: 0, lambda: True)
