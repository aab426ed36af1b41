"""Flask's JSON answers through orjson: 10,000 answers serialise in milliseconds, not tens.

Request bodies stay with the standard parser (or pydantic's, for a predict batch): orjson reads
integers wider than 64 bits as floats, which would silently change a client's id.
"""

import json
from typing import Any

import orjson
from flask.json.provider import DefaultJSONProvider

from services.gateway.errors import ApiError


def parse_json(raw: bytes) -> Any:
    """A body's JSON, or 400 malformed_json saying where it breaks."""
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise ApiError(400, "malformed_json", f"the body is not valid JSON: {error}") from None
    except RecursionError:  # '[' * 1000: the parser's recursion, not the server, gives up
        raise ApiError(400, "malformed_json", "the body's JSON is nested too deeply") from None


class FastJSONProvider(DefaultJSONProvider):
    """orjson for the common case; the standard encoder for what orjson refuses (ints wider
    than 64 bits, e.g. an id a client sent) so that such an answer is slower, never a 500."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs.pop("separators", None)  # Flask asks for compact output: orjson's only kind
        if kwargs:  # e.g. indent in debug mode
            return super().dumps(obj, **kwargs)
        try:
            return orjson.dumps(obj, default=self.default).decode()
        except TypeError:  # orjson.JSONEncodeError is a TypeError
            return super().dumps(obj)
