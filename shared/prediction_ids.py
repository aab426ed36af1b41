"""The ids the gateway gives its answers, which POST /feedback names. Pure, and light: the
gateway imports it (no pyarrow)."""

import re
import secrets
from datetime import UTC, date, datetime

# A prediction id: the day it was made, 96 random bits (nobody guesses another client's), and
# the listing's place in its request: 20261207-9f86d081884c7d659a2feaa0-0. The day lets a
# price that names it read one day's partition, not the month's.
_PREDICTION_ID = re.compile(r"(\d{8})-[0-9a-f]{24}-\d{1,5}")


def new_request_prediction_id(at: float) -> str:
    """A request's prediction id, made at `at` (seconds since the epoch); its listings' ids
    add "-<index>" (listing_prediction_id)."""
    return f"{datetime.fromtimestamp(at, UTC):%Y%m%d}-{secrets.token_hex(12)}"


def listing_prediction_id(request_prediction_id: str, index: int) -> str:
    return f"{request_prediction_id}-{index}"


def day_of_prediction(prediction_id: str) -> date | None:
    """The day a prediction id was issued; None when it is not one the gateway issues."""
    matched = _PREDICTION_ID.fullmatch(prediction_id)
    if matched is None:
        return None
    try:
        return datetime.strptime(matched.group(1), "%Y%m%d").replace(tzinfo=UTC).date()
    except ValueError:
        return None
