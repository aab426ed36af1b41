"""Test-wide wiring: which process of the two (pytest-xdist) runs which tests."""

import pytest


# tryfirst: xdist's worker turns group marks into node ids in its own collection hook, which
# otherwise ran before this one and saw no marks: every test was then scheduled on its own and
# both processes started both stacks.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The reliability suite shares one stack of its own; the integration and model tests share
    # the integration stack and the trained grid. Each group stays on one process, so each
    # starts once; unit tests need neither and fill in wherever a process is free.
    for item in items:
        if "tests/reliability/" in item.nodeid:
            item.add_marker(pytest.mark.xdist_group("reliability"))
        elif "tests/unit/" not in item.nodeid:
            item.add_marker(pytest.mark.xdist_group("main"))
