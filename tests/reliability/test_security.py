"""Who may do what: retrains need the token, data stays under data/raw/, the dashboard's
actions need its credentials, jobs are JSON, request text never comes back as HTML, and no
secret reaches a log."""

import base64
import json
import subprocess
import time
import uuid
import zlib

import pytest
import requests
from rq import Callback, Queue
from rq.job import Job
from rq.serializers import JSONSerializer

from shared.pipeline import QUEUES
from shared.queues import MONITOR_JOB, STAGE_JOB, connect, queue
from shared.runs import RUN_INDEX
from shared.settings import PROJECT_DIR
from tests.integration.conftest import DASHBOARD, GATEWAY_TOKEN, Stack, wait_for_run

pytestmark = pytest.mark.reliability
AUTH = {"Authorization": f"Bearer {GATEWAY_TOKEN}"}
BASIC = {"Authorization": "Basic " + base64.b64encode(":".join(DASHBOARD).encode()).decode()}


def queued_work(stack: Stack) -> tuple[int, int]:
    redis = connect(stack.settings.redis_url)
    return redis.zcard(RUN_INDEX), sum(len(queue(redis, name)) for name in QUEUES)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-the-token"}, {"Authorization": GATEWAY_TOKEN}],
)
def test_retrain_without_the_token_is_401_and_enqueues_nothing(
    isolated_stack: Stack, fault_gateway: str, headers: dict
):
    before = queued_work(isolated_stack)
    reply = requests.post(f"{fault_gateway}/retrain", json={}, headers=headers, timeout=10)
    assert reply.status_code == 401
    assert reply.json()["error"] == "unauthorized"
    assert queued_work(isolated_stack) == before


def test_data_paths_outside_the_raw_folder_are_400(isolated_stack: Stack, fault_gateway: str):
    link = PROJECT_DIR / "data" / "raw" / f"escape-{uuid.uuid4().hex}.csv"
    link.symlink_to("/etc/passwd")
    try:
        before = queued_work(isolated_stack)
        for path in ("../../etc/passwd", "data/raw/../../pyproject.toml", "/etc/passwd",
                     str(link.relative_to(PROJECT_DIR))):  # fmt: skip
            reply = requests.post(
                f"{fault_gateway}/retrain", json={"data_path": path}, headers=AUTH, timeout=10
            )
            assert reply.status_code == 400, (path, reply.text)
            assert reply.json()["fields"][0]["path"] == "data_path"
        assert queued_work(isolated_stack) == before
    finally:
        link.unlink()


def test_dashboard_actions_need_credentials(isolated_stack: Stack, fault_gateway: str):
    redis = connect(isolated_stack.settings.redis_url)
    untouched = Queue(f"untouched-{uuid.uuid4().hex[:8]}", connection=redis,
                      serializer=JSONSerializer)  # fmt: skip
    job = untouched.enqueue("builtins.len", [1, 2])  # no worker listens to this queue
    rq = f"{fault_gateway}/rq"
    actions = [
        f"{rq}/job/{job.id}/delete",
        f"{rq}/job/{job.id}/requeue",
        f"{rq}/requeue/{untouched.name}",
        f"{rq}/queue/{untouched.name}/queued/empty",
        f"{rq}/queue/{untouched.name}/compact",
    ]
    wrong = {"Authorization": "Basic " + base64.b64encode(b"ops:guess").decode()}
    for url in actions:
        for headers in ({}, wrong):
            assert requests.post(url, headers=headers, timeout=10).status_code == 401, url
    assert requests.get(f"{rq}/0/data/queues.json", timeout=10).status_code == 401
    assert untouched.job_ids == [job.id]  # nothing happened

    # With the credentials, from the dashboard's own origin, the same action works: the 401s
    # above guarded real endpoints.
    emptied = requests.post(
        f"{rq}/queue/{untouched.name}/queued/empty",
        headers={**BASIC, "Origin": fault_gateway},
        timeout=10,
    )
    assert emptied.status_code == 200
    assert untouched.job_ids == []


def test_queued_jobs_are_json_never_pickle(isolated_stack: Stack, fault_gateway: str):
    reply = requests.post(
        f"{fault_gateway}/retrain", json={"reason": "payload check", "force": True},
        headers=AUTH, timeout=10,
    )  # fmt: skip
    assert reply.status_code == 202
    redis = connect(isolated_stack.settings.redis_url)
    raw = redis.hget(f"rq:job:{reply.json()['run_id']}-prep", "data")
    payload = zlib.decompress(raw)
    assert not payload.startswith(b"\x80")  # a pickle stream's first byte
    function, _, args, _ = json.loads(payload)
    assert function == STAGE_JOB
    assert args == ["prep", reply.json()["run_id"]]
    # Let the run end: the next tests expect the champion to change only when they say so.
    assert wait_for_run(isolated_stack, reply.json()["run_id"])["state"] == "finished"


def test_request_text_never_comes_back_as_html(fault_gateway: str):
    script = "<script>alert(1)</script>"
    answers = [
        requests.post(f"{fault_gateway}/predict", json={script: 1}, timeout=10),
        requests.get(f"{fault_gateway}/runs/{script}", timeout=10),
        requests.get(f"{fault_gateway}/{script}", timeout=10),
        requests.post(
            f"{fault_gateway}/retrain", json={"data_path": script}, headers=AUTH, timeout=10
        ),
    ]
    for answer in answers:
        assert 400 <= answer.status_code < 500
        assert answer.headers["Content-Type"].startswith("application/json"), answer.text
        assert answer.json()["error"]


def test_no_secret_in_the_repository_or_in_any_log(isolated_stack: Stack, fault_gateway: str):
    secrets = [GATEWAY_TOKEN, DASHBOARD[1]]
    # The requests above sent both secrets; their logs must not repeat them.
    logs = [path for path in isolated_stack.folder.rglob("*.log") if path.is_file()]
    assert any("gateway" in path.name for path in logs)
    for path in logs:
        text = path.read_text(errors="replace")
        for secret in secrets:
            assert secret not in text, f"{secret!r} in {path.name}"
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=PROJECT_DIR, capture_output=True, text=True, check=True
    ).stdout.split()
    assert ".env" not in tracked
    assert not any(name.startswith(".state/") for name in tracked)
    example = (PROJECT_DIR / ".env.example").read_text().splitlines()
    secret_lines = [line for line in example if "PASSWORD=" in line or "TOKEN=" in line]
    assert secret_lines
    assert all(line.endswith("=") for line in secret_lines)  # left for each deployment to set


def ended(job: Job, timeout: float = 60) -> str:
    """The job's status once a worker is done with it."""
    deadline = time.monotonic() + timeout
    while job.get_status(refresh=True) not in ("failed", "finished"):
        assert time.monotonic() < deadline, job.get_status()
        time.sleep(0.2)
    status = job.get_status()
    return status.value if status is not None else ""


def test_workers_run_no_function_but_the_pipeline_stages(isolated_stack: Stack, tmp_path):
    # Anyone who can write to Redis can enqueue a job naming any importable function.
    redis = connect(isolated_stack.settings.redis_url)
    marker = tmp_path / "ran"
    attempts = {
        "os.getpid": [],
        "os.system": [f"touch {marker}"],
        "subprocess.run": [["touch", str(marker)]],
    }
    jobs = [
        Queue("prep", connection=redis, serializer=JSONSerializer).enqueue(
            function,
            args=args,
            on_failure=Callback("os.abort"),  # a callback named in Redis, too
        )
        for function, args in attempts.items()
    ]
    for job in jobs:
        assert ended(job) == "failed", job.func_name  # never run, so never finished
        assert "is not one of the pipeline's jobs" in job.latest_result().exc_string
    # The stage job and the monitor's, asked for a stage or task the pipeline does not
    # declare, run nothing either.
    for allowed in (STAGE_JOB, MONITOR_JOB):
        undeclared = Queue("prep", connection=redis, serializer=JSONSerializer).enqueue(
            allowed, args=["os.system", f"touch {marker}"]
        )
        assert ended(undeclared) == "failed"
        assert "names no stage or monitor task" in undeclared.latest_result().exc_string
    assert not marker.exists()
    assert isolated_stack.workers["prep"].poll() is None  # the callback did not abort it
