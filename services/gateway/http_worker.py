"""gunicorn's sync worker, answering the requests gunicorn itself refuses in the gateway's JSON.

gunicorn refuses what it cannot parse (a request line over 8190 bytes, more than 100 header
fields, a control byte in a header) before Flask sees it, and writes an HTML page for it. A
client of the gateway reads `{"error", "message"}` on every other refusal, the front's
included (deploy/nginx), so these get the same shape, with the same statuses the front uses for
the same faults. Anything else (a failure of the worker itself) stays gunicorn's to answer.
"""

import json
from typing import Any

from gunicorn.http import errors
from gunicorn.util import write_nonblock
from gunicorn.workers.sync import SyncWorker

# (status, reason, error) for the refusals that are not a plain 400 bad_request.
_REFUSALS: dict[type, tuple[int, str, str]] = {
    errors.LimitRequestLine: (414, "URI Too Long", "uri_too_long"),
    errors.InvalidHTTPVersion: (505, "HTTP Version Not Supported", "http_version_not_supported"),
    errors.LimitRequestHeaders: (
        431,
        "Request Header Fields Too Large",
        "request_header_fields_too_large",
    ),
    errors.ExpectationFailed: (417, "Expectation Failed", "expectation_failed"),
    errors.UnsupportedTransferCoding: (501, "Not Implemented", "not_implemented"),
    errors.ForbiddenProxyRequest: (403, "Forbidden", "forbidden"),
}
_BAD_REQUEST = (400, "Bad Request", "bad_request")
# What the client sent wrong: the request's head, or a chunked body's framing.
_CLIENT_FAULTS = (
    errors.ParseException,
    errors.InvalidChunkSize,
    errors.InvalidChunkExtension,
    errors.ChunkMissingTerminator,
)


def refusal_bytes(exc: Exception) -> bytes:
    """The whole HTTP answer to a request gunicorn could not parse: JSON, then close."""
    status, reason, error = next(
        (answer for kind, answer in _REFUSALS.items() if isinstance(exc, kind)), _BAD_REQUEST
    )
    body = json.dumps({"error": error, "message": f"malformed HTTP request: {exc}"}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


class JsonErrorWorker(SyncWorker):
    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        # ConfigurationProblem is a ParseException too, but the fault is ours: gunicorn's 500.
        if not isinstance(exc, _CLIENT_FAULTS) or isinstance(exc, errors.ConfigurationProblem):
            super().handle_error(req, client, addr, exc)
            return
        self.log.warning("Invalid request from ip=%s: %s", (addr or ("",))[0], exc)
        try:
            write_nonblock(client, refusal_bytes(exc))
        except OSError:  # the client is gone already
            self.log.debug("Failed to send error message.")
