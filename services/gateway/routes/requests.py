"""Reading request bodies and query flags, with the JSON errors the contract promises."""

import hmac
from typing import Any

from flask import request

from services.gateway.errors import ApiError
from services.gateway.json_provider import parse_json
from shared.settings import Settings

_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no", "")


def json_body(required: bool = True) -> Any:
    """The parsed JSON body: 415 when it is not JSON, 400 when it does not parse."""
    raw = _read_body()
    if not raw.strip() and not required:
        return None
    return parse_json(_json_only(raw))


def json_bytes() -> bytes:
    """The JSON body as sent, unparsed: 415 when it is not JSON."""
    return _json_only(_read_body())


def _read_body() -> bytes:
    raw = request.get_data(cache=False)
    _refuse_a_chunked_body_over_the_cap(len(raw))
    return raw


def _json_only(raw: bytes) -> bytes:
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type",
                       "send JSON with Content-Type: application/json")  # fmt: skip
    return raw


def _refuse_a_chunked_body_over_the_cap(read: int) -> None:
    """A chunked body (no Content-Length) is cut at the cap without a word by werkzeug; one
    more byte there means the body was larger, so it is refused whole, not parsed truncated."""
    cap = request.max_content_length
    chunked = request.content_length is None
    if chunked and cap is not None and read >= cap and request.environ["wsgi.input"].read(1):
        raise ApiError(413, "request_entity_too_large",
                           f"the body is larger than the limit of {cap} bytes")  # fmt: skip


def require_token(settings: Settings, operation: str) -> None:
    """The retrain token as a bearer token, or 401; without one configured, nobody passes."""
    token = settings.retrain_token
    given = request.headers.get("Authorization", "")
    scheme, _, credential = given.partition(" ")
    if (
        token is None
        or scheme.lower() != "bearer"
        or not hmac.compare_digest(credential.strip().encode(), token.get_secret_value().encode())
    ):
        raise ApiError(401, "unauthorized", f"{operation} needs Authorization: Bearer <token>")


def query_flag(name: str) -> bool:
    """A true/false query parameter; anything else is a 422 naming it."""
    value = request.args.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ApiError(422, "validation_error", f"query parameter {name} must be true or false",
                   fields=[{"path": f"?{name}", "message": "must be true or false"}])  # fmt: skip
