"""A challenger on live traffic, on the real stack and the session's gunicorn gateway: every
process loads it, it scores its share of requests and never changes an answer; realised prices
score it beside the champion; promoting it goes through the gate; what cannot be served is
refused; the history lists each step."""

import math
import re
import time
from collections.abc import Iterator

import pytest
import requests

from services.stack import processes
from shared.contracts import Listing
from shared.registry import Registry
from tests.integration.conftest import FAST_GRID, GATEWAY_TOKEN, Stack, gate_in_process
from tests.integration.test_lifecycle import pickled_version, registered_again

pytestmark = pytest.mark.integration
AUTH = {"Authorization": f"Bearer {GATEWAY_TOKEN}"}
SHARE = 0.1  # the gateway's challenger_share: the default
REQUESTS = 600


def _listings(stack: Stack, count: int, seed: int) -> tuple[list[dict], list[float]]:
    """Listings of the shipped data, each with an id of its own, and their real prices."""
    sample = stack.shipped_listings().sample(count, random_state=seed)
    listings = [
        Listing.model_validate({**row, "id": f"ch-{seed}-{n}"}).model_dump()
        for n, row in enumerate(sample[list(Listing.model_fields)].to_dict("records"))
    ]
    return listings, [float(price) for price in sample["price"]]


def _scrape(gateway: str) -> dict[str, float]:
    text = requests.get(f"{gateway}/metrics", timeout=10).text
    return {name: float(value) for name, value in re.findall(r"^(\S+) (\S+)$", text, re.M)}


def _held_everywhere(gateway: str, version: str) -> None:
    """Wait until every gateway process holds the challenger (the gauge is their minimum)."""
    processes.wait_until(
        lambda: _scrape(gateway).get("gateway_challenger_version") == float(version),
        30,
        f"every gateway process holding challenger v{version}",
    )


def _answer(listing: dict, session: requests.Session, gateway: str) -> dict:
    reply = session.post(f"{gateway}/predict", json=listing, timeout=30)
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    return {k: answer[k] for k in ("price_category", "probabilities", "model_version")}


@pytest.fixture
def challenger(stack: Stack, gateway: str, served_champion: str) -> Iterator[str]:
    """The champion's model registered again (never promoted), set as challenger; afterwards
    no challenger, and the champion the test found."""
    version = registered_again(stack, served_champion)
    yield version
    requests.delete(f"{gateway}/model/challenger", headers=AUTH, timeout=60)
    if str(Registry(stack.settings).champion().version) != served_champion:
        requests.post(
            f"{gateway}/model/rollback", json={"version": served_champion}, headers=AUTH, timeout=60
        ).raise_for_status()


def test_a_challenger_scores_its_share_and_never_changes_an_answer(
    stack: Stack, gateway: str, served_champion: str, challenger: str
):
    listings, _ = _listings(stack, 50, seed=31)
    with requests.Session() as session:
        before = [_answer(listing, session, gateway) for listing in listings]
        reply = requests.post(
            f"{gateway}/model/challenger",
            json={"version": challenger, "reason": "trial"},
            headers=AUTH,
            timeout=60,
        )
        assert reply.status_code == 200, reply.text
        _held_everywhere(gateway, challenger)
        after = [_answer(listings[n % len(listings)], session, gateway) for n in range(REQUESTS)]
    # Each process scores what is left waiting after a second and sends its tallies about
    # once a second.
    time.sleep(3.5)

    set_ = reply.json()
    assert (set_["action"], set_["version"], set_["champion_version"]) == (
        "challenger_set",
        challenger,
        served_champion,
    )
    assert set_["share"] == SHARE and set_["by"]["token"] == "retrain"
    # Clients see the champion's answers, as before the challenger came (the probabilities
    # within the compiled trees' tolerance: a process may have compiled them in between).
    for n, answer in enumerate(after):
        expected = before[n % len(before)]
        assert answer["model_version"] == expected["model_version"] == served_champion
        assert answer["price_category"] == expected["price_category"]
        assert answer["probabilities"] == pytest.approx(expected["probabilities"], abs=1e-6)
    shown = requests.get(f"{gateway}/model/challenger", timeout=30).json()
    assert (shown["version"], shown["champion_version"]) == (challenger, served_champion)
    shadow = shown["shadow"]
    # Its share of the requests, within four and a half binomial deviations.
    spread = 4.5 * math.sqrt(REQUESTS * SHARE * (1 - SHARE))
    assert abs(shadow["requests"] - REQUESTS * SHARE) <= spread, shadow
    assert shadow["listings"] == shadow["requests"]  # one listing a request
    assert shadow["agreement"] == 1.0  # the same model: the same category every time
    assert sum(c["listings"] for c in shadow["by_champion_category"].values()) == shadow["listings"]
    scoring = shadow["scoring_ms"]
    assert 0 < scoring["per_listing"] < 100
    # In passes, not one request at a time: at least one pass per process, fewer than requests.
    assert 2 <= scoring["passes"] < shadow["requests"]
    assert shown["single_row_ms"]["champion"] > 0
    assert shadow["since"] == set_["at"]
    scraped = _scrape(gateway)
    assert (
        scraped[f'gateway_challenger_requests_total{{version="{challenger}"}}']
        == shadow["requests"]
    )
    passes = f'gateway_challenger_pass_seconds_count{{version="{challenger}"}}'
    assert scraped[passes] == scoring["passes"]

    removed = requests.delete(f"{gateway}/model/challenger", headers=AUTH, timeout=60)
    assert removed.status_code == 200, removed.text
    processes.wait_until(
        lambda: _scrape(gateway).get("gateway_challenger_version") == 0,
        30,
        "every gateway process dropping the challenger",
    )
    gone = requests.get(f"{gateway}/model/challenger", timeout=30)
    assert (gone.status_code, gone.json()["error"]) == (404, "no_challenger")
    events = requests.get(f"{gateway}/model/history", timeout=30).json()["events"]
    assert [(e["action"], e["version"]) for e in events[:2]] == [
        ("challenger_removed", challenger),
        ("challenger_set", challenger),
    ]


@pytest.fixture
def prices_forgotten_after(stack: Stack) -> Iterator[None]:
    """The realised prices a test sends are deleted from the monitor's store afterwards: later
    tests score the prices they send themselves, in the same window."""
    before = set(stack.settings.feedback_dir.rglob("*.parquet"))
    yield
    for added in set(stack.settings.feedback_dir.rglob("*.parquet")) - before:
        added.unlink()


def _send_realised_prices(gateway: str, listings: list[dict], prices: list[float]) -> None:
    """Predict the listings and send their real prices; wait until they are joined."""
    reply = requests.post(f"{gateway}/predict", json=listings, timeout=60)
    assert reply.status_code == 200, reply.text
    feedback = [
        {"prediction_id": answer["prediction_id"], "price": price}
        for answer, price in zip(reply.json()["predictions"], prices, strict=True)
    ]
    sent = requests.post(f"{gateway}/feedback", json=feedback, headers=AUTH, timeout=30)
    assert sent.status_code == 202, sent.text
    deadline = time.monotonic() + 60
    while (
        requests.get(f"{gateway}{sent.json()['status_url']}", timeout=10).json()["state"]
        != "joined"
    ):
        assert time.monotonic() < deadline, "the prices were not joined within 60 s"
        time.sleep(0.5)


def test_realised_prices_score_both_side_by_side_and_the_gate_promotes_on_them(
    stack: Stack, gateway: str, served_champion: str, challenger: str, prices_forgotten_after: None
):
    reply = requests.post(
        f"{gateway}/model/challenger", json={"version": challenger}, headers=AUTH, timeout=60
    )
    assert reply.status_code == 200, reply.text
    listings, prices = _listings(stack, 400, seed=32)
    _send_realised_prices(gateway, listings, prices)

    def trial() -> dict | None:
        return requests.get(f"{gateway}/model/challenger", timeout=30).json()["live"]

    processes.wait_until(lambda: trial() is not None, 60, "the monitor's challenger trial")
    live = trial()
    assert live["version"] == challenger and live["champion_version"] == served_champion
    assert live["judged"] >= 400  # these, and any an earlier test sent in the window
    assert live["categories_judged"] == ["High", "Low", "Lux", "Mid"]
    # The same model on the same realised prices: the same scores, side by side.
    assert live["challenger"] == live["champion"]
    assert 0.3 < live["champion"]["accuracy"] <= 1
    scraped = _scrape(gateway)
    accuracy = 'monitor_challenger_live_score{{metric="accuracy",model="{}",version="{}"}}'
    assert scraped[accuracy.format("challenger", challenger)] == live["challenger"]["accuracy"]

    promoted = requests.post(
        f"{gateway}/model/challenger/promote",
        json={"reason": "as good live"},
        headers=AUTH,
        timeout=60,
    )

    assert promoted.status_code == 200, promoted.text
    body = promoted.json()
    assert (body["action"], body["version"], body["from_version"]) == (
        "promoted",
        challenger,
        served_champion,
    )
    assert body["decision"]["compared_on"] == "realised prices"
    assert body["decision"]["failed_conditions"] == []
    assert "as good live" in body["reason"]
    registry = Registry(stack.settings)
    assert str(registry.champion().version) == challenger
    assert registry.challenger() is None  # promoted: no longer a challenger
    events = requests.get(f"{gateway}/model/history", timeout=30).json()["events"]
    assert [(e["action"], e["version"]) for e in events[:2]] == [
        ("promoted", challenger),
        ("challenger_set", challenger),
    ]
    assert events[0]["by"]["token"] == "retrain" and events[0]["metric"]


def test_a_version_this_code_would_not_serve_is_refused_as_challenger(
    stack: Stack, gateway: str, served_champion: str
):
    pickled = pickled_version(stack)
    refused = requests.post(
        f"{gateway}/model/challenger", json={"version": pickled}, headers=AUTH, timeout=60
    )
    missing = requests.post(
        f"{gateway}/model/challenger", json={"version": 99999}, headers=AUTH, timeout=60
    )
    champion = requests.post(
        f"{gateway}/model/challenger", json={"version": served_champion}, headers=AUTH, timeout=60
    )
    promote = requests.post(f"{gateway}/model/challenger/promote", headers=AUTH, timeout=60)

    assert (refused.status_code, refused.json()["error"]) == (422, "version_unservable")
    assert refused.json()["fields"][0]["path"] == "version"
    assert (missing.status_code, missing.json()["error"]) == (404, "version_not_found")
    assert (champion.status_code, champion.json()["error"]) == (409, "already_champion")
    assert (promote.status_code, promote.json()["error"]) == (404, "no_challenger")
    assert Registry(stack.settings).challenger() is None


# Gate settings under which the fast grid's forest, below its LightGBM champion, fails only
# the champion's score, by less than the margin.
NEAR_MISS_GATE = {
    "challenger_margin": 0.5,
    "max_drop": 1.0,
    "min_score": 0.5,
    "max_recall_drop": None,
    "max_calibration_error_rise": None,
}


def test_a_winner_that_just_lost_the_gate_is_tried_unless_one_was_set_by_hand(
    stack: Stack, gateway: str, served_champion: str, fast_run: dict
):
    registry = Registry(stack.settings)
    assert registry.version(served_champion).tags["candidate"] == "lgbm_all"
    stack.write_grid(FAST_GRID, select=NEAR_MISS_GATE)
    try:
        near = gate_in_process(stack, fast_run, "notebook_rf")
        by_hand = registered_again(stack, served_champion)
        set_ = requests.post(
            f"{gateway}/model/challenger", json={"version": by_hand}, headers=AUTH, timeout=60
        )
        again = gate_in_process(stack, fast_run, "notebook_rf")
        challenger_after = str(registry.challenger().version)
    finally:
        stack.write_grid(FAST_GRID)
        requests.delete(f"{gateway}/model/challenger", headers=AUTH, timeout=60)

    assert (near["decision"], near["failed_conditions"]) == ("not_promoted", ["champion_now"])
    assert near["challenger"] is True
    events = requests.get(f"{gateway}/model/history", timeout=30).json()["events"]
    tried = next(
        e for e in events if e["action"] == "challenger_set" and e["version"] == near["version"]
    )
    assert tried["by"]["run_id"] and "select.challenger_margin" in tried["reason"]
    assert set_.status_code == 200, set_.text
    assert set_.json()["from_version"] == near["version"]  # the run's, replaced by hand
    # A later near miss leaves the one set by hand.
    assert again["challenger"] is False and challenger_after == by_hand
    assert str(registry.champion().version) == served_champion
