"""Faults are injected into a stack of their own, so they never disturb other tests."""

from collections.abc import Iterator

import pytest

from tests.integration.conftest import Stack, running_stack


@pytest.fixture(scope="module")
def isolated_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("faults")) as running:
        yield running
