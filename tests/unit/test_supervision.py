"""The supervisor's policy on real (tiny) processes: restart with doubling delays, give up on a
process that keeps dying at once, and leave alone one it was asked to stop."""

import subprocess
import time
from pathlib import Path

import pytest

from services.stack.processes import ChildGaveUpError, Supervised


class Quick(Supervised):
    """The runner's policy on a millisecond scale."""

    STABLE_SECONDS = 0.1
    FIRST_DELAY, MAX_DELAY = 0.01, 0.04


def start(command: str, starts: list[float]):
    def started() -> subprocess.Popen:
        starts.append(time.monotonic())
        return subprocess.Popen(["sh", "-c", command])

    return started


def supervise_until(child: Supervised, done, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline
        child.ensure_running()
        time.sleep(0.002)


def test_a_process_that_keeps_dying_is_given_up_naming_it_and_its_log(tmp_path: Path):
    starts: list[float] = []
    child = Quick("flaky", start("exit 3", starts), tmp_path / "flaky.log")
    with pytest.raises(ChildGaveUpError) as error:
        supervise_until(child, lambda: False)
    assert len(starts) == 1 + Quick.MAX_QUICK_FAILURES  # the first start and 5 restarts
    message = str(error.value)
    assert "flaky exited with code 3" in message and str(tmp_path / "flaky.log") in message
    gaps = [later - earlier for earlier, later in zip(starts, starts[1:], strict=False)]
    assert gaps[1] > gaps[0] and gaps[-1] >= Quick.MAX_DELAY  # doubling, up to the cap


def test_a_process_that_stayed_up_is_restarted_with_a_fresh_count(tmp_path: Path):
    starts: list[float] = []
    child = Quick("steady", start("sleep 0.15", starts), tmp_path / "steady.log")
    supervise_until(child, lambda: len(starts) == 1 + Quick.MAX_QUICK_FAILURES + 2)
    assert child.quick_failures == 1  # every death came after a stable run: never given up
    child.stop()


def test_a_process_that_stayed_up_once_is_never_given_up_however_often_it_dies_after(
    tmp_path: Path,
):
    """A worker that ran, then dies at once while Redis is away, for as long as it is away:
    started again and again, the delay capped, never given up."""
    starts: list[float] = []
    marker = tmp_path / "ran-once"
    command = f"if [ -e {marker} ]; then exit 3; else touch {marker}; sleep 0.15; fi"
    child = Quick("worker", start(command, starts), tmp_path / "worker.log")
    supervise_until(child, lambda: len(starts) == 1 + 3 * Quick.MAX_QUICK_FAILURES)
    # Dying at once every time: the old policy gave up after MAX_QUICK_FAILURES of these.
    assert child.ever_stable and child.quick_failures > 2 * Quick.MAX_QUICK_FAILURES
    child.stop()


def test_a_stopped_process_is_not_restarted(tmp_path: Path):
    starts: list[float] = []
    child = Quick("asked", start("sleep 30", starts), tmp_path / "asked.log")
    child.stop()
    assert child.ensure_running() is False
    assert len(starts) == 1 and child.poll() is not None
