"""A month of traffic at 1/20 of its volume (150,000 listings, 5,000 realised prices), through
the real gateway, Redis and monitor worker, with a Redis freeze and the monitor killed: the
same code as `make soak` (bench.soak), whose report holds the memory and latency figures."""

import pytest

from bench.soak import Volume, run_soak

pytestmark = pytest.mark.reliability


def test_a_month_at_a_twentieth_of_its_volume_keeps_every_listing_and_price(tmp_path):
    result = run_soak(Volume.month(0.05), tmp_path)
    print("\n".join(result.lines()))  # noqa: T201 - the figures, for whoever reads the log
    assert result.problems == []
    assert result.answered_listings == result.stored_listings >= 150_000
    assert result.prices_sent >= 4_900
    assert result.monitor_scores["accuracy"] == result.expected_scores["accuracy"]
    assert result.dropped == 0 and result.dead_letters == 0
    assert result.drift_checks >= 1
