"""What reaches the gateway's front but is not HTTP the gateway can answer: an oversized body
(chunked too), malformed requests, over-long lines and headers, a gateway that is down. Each
gets a JSON error, never an HTML page: from the front, and from gunicorn when it is reached
without the front (a probe, a deployment that puts its own proxy before it)."""

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from services.stack import processes
from services.stack.front import start_front
from shared.contracts import CHALLENGE_EXAMPLE

pytestmark = pytest.mark.reliability
CAP = 16 * 1024 * 1024  # the gateway's MAX_BODY_BYTES, which the front enforces
CLOSE = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"  # answered, then closed


def raw_exchange(url: str, request: bytes) -> tuple[int, dict[str, str], str]:
    """Send bytes as they are; the status, headers and body of the answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), {k.lower(): v for k, v in headers.items()}, body.decode()


def assert_json_error(status: int, headers: dict[str, str], body: str, expected: int) -> None:
    assert status == expected, body
    assert headers["content-type"].startswith("application/json"), headers
    assert "<html" not in body.lower()
    assert requests.models.complexjson.loads(body)["message"]


def test_a_chunked_body_over_the_cap_is_413_json(fault_front: str):
    def chunks() -> Iterator[bytes]:
        yield b'["' + b"x" * (1024 * 1024)
        for _ in range(CAP // (1024 * 1024)):
            yield b"x" * (1024 * 1024)
        yield b'"]'

    reply = requests.post(
        f"{fault_front}/predict",
        data=chunks(),  # a generator: sent chunked, with no Content-Length
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert reply.status_code == 413, reply.text
    assert reply.json()["error"] == "request_entity_too_large"
    # A body within the cap still reaches the gateway (which answers it).
    assert requests.post(f"{fault_front}/predict", json=CHALLENGE_EXAMPLE, timeout=10).ok


# What neither the front nor gunicorn takes; each answers it in JSON.
MALFORMED = {
    "not-http": (b"GARBAGE\r\n\r\n", 400),
    "negative-length": (b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
    "long-request-line": (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    "long-header": (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
    # More header fields than gunicorn takes (100), each short: the front lets them by.
    "many-headers": (CLOSE + b"X-A: a\r\n" * 200 + b"\r\n", 431),
    "control-byte": (CLOSE + b"X-A: a\x01b\r\n\r\n", 400),
    "http-9.9": (b"GET / HTTP/9.9\r\nHost: x\r\n\r\n", 505),
}
# What only the front refuses (gunicorn hands it to the gateway's routes).
FRONT_REFUSES = {
    "trace": (b"TRACE / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 405),
    # The front's own error pages are internal: asked for, they are not found.
    "internal": (b"GET /_front/400.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404),
}


@pytest.mark.parametrize(("request_bytes", "status"), MALFORMED.values(), ids=MALFORMED.keys())
@pytest.mark.parametrize("reached", ["fault_front", "fault_gateway"])
def test_malformed_http_gets_a_json_error_never_html(
    request: pytest.FixtureRequest, reached: str, request_bytes: bytes, status: int
):
    url = request.getfixturevalue(reached)
    assert_json_error(*raw_exchange(url, request_bytes), status)


@pytest.mark.parametrize(
    ("request_bytes", "status"), FRONT_REFUSES.values(), ids=FRONT_REFUSES.keys()
)
def test_the_front_refuses_what_the_gateway_never_serves(
    fault_front: str, request_bytes: bytes, status: int
):
    assert_json_error(*raw_exchange(fault_front, request_bytes), status)


def test_a_gateway_that_is_down_is_a_json_503_with_retry_after(tmp_path: Path):
    nothing_there = f"127.0.0.1:{processes.free_port()}"
    process, port = start_front(tmp_path / "front", nothing_there)
    try:
        reply = requests.post(
            f"http://127.0.0.1:{port}/predict", json=CHALLENGE_EXAMPLE, timeout=10
        )
    finally:
        processes.stop(process)
    assert reply.status_code == 503
    assert reply.json()["error"] == "gateway_unavailable"
    assert reply.headers["Retry-After"] == "5"
