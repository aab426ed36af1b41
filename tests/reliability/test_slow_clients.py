"""Slow or hostile clients cannot starve the others: the buffering front (nginx) reads every
request whole before one of gunicorn's single-threaded workers sees it.

Without the front, two sockets that send their headers one line every 3 seconds, or headers
and no body, held both workers: no other prediction was answered in 30 s.
"""

import socket
import threading
import time
from contextlib import suppress

import numpy as np
import pytest
import requests

from shared.contracts import CHALLENGE_EXAMPLE

pytestmark = pytest.mark.reliability

SLOWLORIS_SOCKETS = 64
STALLED_BODIES = 2
# Each slow client: a request line, then one more header line every this many seconds.
HEADER_LINE_EVERY = 3.0
SINGLE_PREDICTIONS = 300


class SlowClients:
    """Sockets that start requests and never finish them: slowloris headers (one line every few
    seconds) and complete headers announcing a body never sent. A socket the server closes is
    opened again, as an attacker would, so that the pressure lasts the whole test."""

    def __init__(self, url: str, slowloris: int, stalled_bodies: int) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.address = (host, int(port))
        self.kinds = ["slowloris"] * slowloris + ["stalled_body"] * stalled_bodies
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(k,)) for k in self.kinds]

    def _open(self, kind: str) -> socket.socket:
        sock = socket.create_connection(self.address, timeout=5)
        head = "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        if kind == "stalled_body":
            head += "Content-Length: 1000\r\n\r\n"  # and then nothing
        sock.sendall(head.encode())
        return sock

    def _run(self, kind: str) -> None:
        sock = self._open(kind)
        line = 0
        while not self._stop.wait(HEADER_LINE_EVERY):
            try:
                if kind == "slowloris":
                    line += 1
                    sock.sendall(f"X-Slow-{line}: {line}\r\n".encode())
                else:  # a stalled body sends nothing; see whether the server hung up
                    sock.settimeout(0.01)
                    with suppress(TimeoutError):
                        if sock.recv(1) == b"":
                            raise ConnectionResetError
            except OSError:
                sock.close()
                sock = self._open(kind)
        sock.close()

    def __enter__(self) -> "SlowClients":
        for thread in self._threads:
            thread.start()
        time.sleep(1)  # every socket connected and started its request
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


def test_slow_clients_do_not_starve_a_well_behaved_one(fault_front: str):
    latencies, failures = [], []
    slow = SlowClients(fault_front, SLOWLORIS_SOCKETS, STALLED_BODIES)
    with slow, requests.Session() as session:
        for _ in range(SINGLE_PREDICTIONS):
            started = time.perf_counter()
            try:
                reply = session.post(f"{fault_front}/predict", json=CHALLENGE_EXAMPLE, timeout=5)
                if reply.status_code != 200:
                    failures.append(reply.status_code)
            except requests.RequestException as error:
                failures.append(type(error).__name__)
            latencies.append((time.perf_counter() - started) * 1000)

    p50, p99 = np.percentile(latencies, [50, 99])
    print(f"{SINGLE_PREDICTIONS} predictions beside {SLOWLORIS_SOCKETS} slowloris and "  # noqa: T201
          f"{STALLED_BODIES} stalled-body sockets: p50 {p50:.1f} ms, p99 {p99:.1f} ms")  # fmt: skip
    assert failures == []  # every one answered, within 5 s, with 200
