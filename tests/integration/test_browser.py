"""A person's view: /docs sends the challenge's example, /rq shows the three queues."""

import json
import os
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

from shared.contracts import CHALLENGE_EXAMPLE
from tests.integration.conftest import DASHBOARD

pytestmark = pytest.mark.integration
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Headless, and no background calls: this machine's network is closed.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert os.path.exists(CHROMIUM), f"{CHROMIUM} is missing: apt-get install chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def test_docs_page_sends_the_challenge_example(browser: Browser, gateway: str, served_champion):
    page = browser.new_page()
    page.goto(f"{gateway}/docs")
    operation = page.locator("#operations-default-post_predict")
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.locator("textarea.body-param__text").fill(json.dumps(CHALLENGE_EXAMPLE))
    operation.get_by_role("button", name="Execute").click()
    answer = operation.locator(".live-responses-table .response-col_description pre").first
    answer.wait_for(timeout=30_000)
    body = json.loads(answer.inner_text())
    assert body["id"] == 1001
    assert body["model_version"] == served_champion
    assert body["price_category"] in ("Low", "Mid", "High", "Lux")
    page.close()


def test_dashboard_shows_the_three_queues(browser: Browser, gateway: str, served_champion: str):
    # served_champion: a run has gone through every queue, so Redis knows all three.
    context = browser.new_context(
        http_credentials={"username": DASHBOARD[0], "password": DASHBOARD[1]}
    )
    page = context.new_page()
    page.goto(f"{gateway}/rq/")
    queues = page.locator("#queues")
    for name in ("prep", "train", "explain"):
        queues.get_by_text(name, exact=True).first.wait_for(timeout=30_000)
    context.close()
