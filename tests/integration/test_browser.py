"""A person's view: /docs sends the challenge's example, /rq shows the three queues and runs
nothing but its own scripts, and its actions take only its own POSTs."""

import json
import os
import uuid
from collections.abc import Iterator

import pytest
import requests
from playwright.sync_api import Browser, sync_playwright
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer

from shared.contracts import CHALLENGE_EXAMPLE
from shared.pipeline import QUEUES
from shared.queues import connect
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
    for name in QUEUES:
        queues.get_by_text(name, exact=True).first.wait_for(timeout=30_000)
    context.close()


def test_markup_in_a_job_never_runs_in_the_dashboard(browser: Browser, gateway: str, stack):
    # Markup the gateway keeps out of jobs (a data_path may hold only [A-Za-z0-9._/-]), written
    # straight into Redis as an older version or anyone with Redis' password could.
    redis = connect(stack.settings.redis_url)
    parked = Queue(f"parked-{uuid.uuid4().hex[:8]}", connection=redis, serializer=JSONSerializer)
    markup = "<img src=x onerror=\"document.title='pwned'\">"
    job = parked.enqueue("builtins.len", [1, 2], description=f"prep_job x-{markup}.csv")
    context = browser.new_context(
        http_credentials={"username": DASHBOARD[0], "password": DASHBOARD[1]}
    )
    page = context.new_page()
    blocked: list[str] = []
    page.on("console", lambda message: blocked.append(message.text))
    page.goto(f"{gateway}/rq/0/view/job/{job.id}")
    # The dashboard's own scripts still run under its policy: they render the job.
    page.get_by_text(job.id).first.wait_for(timeout=30_000)
    page.wait_for_timeout(1_000)  # time for the broken image's error handler, were it allowed
    assert page.title() != "pwned"
    assert any("Content Security Policy" in text for text in blocked), blocked
    context.close()
    job.delete()


def test_dashboard_actions_need_a_post_from_the_dashboard_itself(gateway: str, stack):
    redis = connect(stack.settings.redis_url)
    parked = Queue(f"parked-{uuid.uuid4().hex[:8]}", connection=redis, serializer=JSONSerializer)
    job = parked.enqueue("builtins.len", [1, 2])
    credentials = (DASHBOARD[0], DASHBOARD[1])
    delete = f"{gateway}/rq/job/{job.id}/delete"
    for headers in ({"Origin": "http://evil.example"}, {"Referer": "http://evil.example/x"}, {}):
        refused = requests.post(delete, auth=credentials, headers=headers, timeout=10)
        assert refused.status_code == 403, (headers, refused.text)
        assert refused.json()["error"] == "cross_origin"
    assert Job.exists(job.id, connection=redis)  # nothing deleted
    # A GET never changes state (rq-dashboard requeues a whole queue on one).
    requeue = requests.get(f"{gateway}/rq/requeue/{parked.name}", auth=credentials, timeout=10)
    assert requeue.status_code == 405
    page = requests.get(f"{gateway}/rq/", auth=credentials, timeout=10)
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "script-src 'self' 'nonce-" in page.headers["Content-Security-Policy"]
    # From the dashboard's own page (its origin), the action goes through.
    accepted = requests.post(delete, auth=credentials, headers={"Origin": gateway}, timeout=10)
    assert accepted.status_code == 200, accepted.text
    assert not Job.exists(job.id, connection=redis)
