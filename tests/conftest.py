"""Test-wide wiring: which process of the two (pytest-xdist) runs which tests."""

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The reliability suite shares one stack of its own; every other test shares the
    # integration stack. Each group stays on one process, so each stack starts once.
    for item in items:
        group = "reliability" if "tests/reliability/" in item.nodeid else "main"
        item.add_marker(pytest.mark.xdist_group(group))
