"""Test-wide wiring: which process of the two (pytest-xdist) runs which tests."""

import pytest

# Reliability modules that run on a second fault stack of their own (about 4 of the suite's 27
# minutes): the process that ran the integration tests (about 18) takes them once it is done,
# so both end together instead of one waiting 9 minutes for the other. xdist gives the groups
# out largest first, and a third group to the first process nearly done.
ON_A_SECOND_STACK = ("test_worker_faults.py", "test_supervision.py")


# tryfirst: xdist's worker turns group marks into node ids in its own collection hook, which
# otherwise ran before this one and saw no marks: every test was then scheduled on its own and
# both processes started both stacks.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The reliability suite shares one stack of its own (two: see ON_A_SECOND_STACK); the
    # integration and model tests share the integration stack and the trained grid. Each group
    # stays on one process, so each starts once; unit tests need neither and fill in wherever
    # a process is free.
    for item in items:
        if any(f"tests/reliability/{name}" in item.nodeid for name in ON_A_SECOND_STACK):
            item.add_marker(pytest.mark.xdist_group("reliability-second"))
        elif "tests/reliability/" in item.nodeid:
            item.add_marker(pytest.mark.xdist_group("reliability"))
        elif "tests/unit/" not in item.nodeid:
            item.add_marker(pytest.mark.xdist_group("main"))
