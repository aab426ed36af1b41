"""Python's cyclic garbage collector paused while a request is answered.

A request builds its objects and drops them; reference counting frees them when it ends, since
they hold no cycles. The collector does not know that: a batch of 10,000 listings allocates
about a million objects, and the collector runs a pass every 700 of them. What the gateway
loaded before serving is frozen out of those passes (services.gateway.wsgi), so they cost
less than they would, but still 9% of a batch (10,000 listings through the Flask app, one
thread: 124 ms running, 113 ms paused; bench.layers shows both). Paused, the collection it
would have made runs once, after the app has answered, on what is left.
"""

import gc
from collections.abc import Callable, Iterable
from typing import Any

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class CollectorPausedPerRequest:
    """WSGI middleware: the collector is off while the app answers a request (the answer's
    bytes are made by then: Flask encodes JSON before it returns), and back on after, even when
    the app raises. Only the request that paused it resumes it, so requests answered at once
    on several threads leave it on once the first of them has finished."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        paused_here = gc.isenabled()
        gc.disable()
        try:
            return self.app(environ, start_response)
        finally:
            if paused_here:
                gc.enable()
