"""Request and response contracts of the gateway, validated with pydantic v2.

The same models validate requests and generate the OpenAPI document, so the two never
disagree. Unknown fields are rejected: a typo such as `bedroom` is an error, not ignored.
"""

import math
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)

from shared.cleaning import parse_price
from shared.schema import (
    LATITUDE_RANGE,
    LONGITUDE_RANGE,
    Neighbourhood,
    PriceCategory,
    RoomType,
)

# The NY Estimator challenge's example request: valid exactly as written.
CHALLENGE_EXAMPLE: dict[str, Any] = {
    "id": 1001, "accommodates": 4, "room_type": "Entire home/apt", "beds": 2, "bedrooms": 1,
    "bathrooms": 2, "neighbourhood": "Brooklyn", "tv": 1, "elevator": 1, "internet": 0,
    "latitude": 40.71383, "longitude": -73.9658,
}  # fmt: skip


# Amenity flags accept 0/1 and true/false (as 1/0), nothing else (not "yes", not "1", not 2):
# pydantic's own literal check, with no Python call per flag (three per listing cost 15% of a
# 10,000-listing batch's time in the gateway).
Flag = Literal[0, 1]


def _storable(value: Any) -> Any:
    """Text that UTF-8 can hold: JSON may carry a lone surrogate ("\\ud800"), which nothing
    downstream can write (the prediction log's Parquet files, MLflow); refused here, by name,
    instead of being answered and then failing every drain of the log."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("must be valid Unicode text (it holds a lone surrogate)") from None
    return value


Text = Annotated[str, AfterValidator(_storable)]


def _listing_id(value: Any) -> Any:
    """An integer or a short string; checked here so an error names `id`, not a union arm."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and 1 <= len(value) <= 64:
        return _storable(value)
    raise ValueError("must be an integer or a string of 1 to 64 characters")


ListingId = Annotated[int | str, BeforeValidator(_listing_id)]


class Listing(BaseModel):
    """One listing to price: the challenge's twelve fields plus optional extras."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [CHALLENGE_EXAMPLE]},
    )

    id: ListingId = Field(description="Caller's identifier, echoed back; never used by the model")
    accommodates: int = Field(ge=1, le=100, description="Guests the listing sleeps")
    room_type: RoomType
    beds: int = Field(ge=0, le=100)
    bedrooms: int = Field(ge=0, le=100)
    bathrooms: float = Field(ge=0, le=50, allow_inf_nan=False, description="Halves allowed")
    neighbourhood: Neighbourhood = Field(description="Borough")
    latitude: float = Field(ge=LATITUDE_RANGE[0], le=LATITUDE_RANGE[1], allow_inf_nan=False)
    longitude: float = Field(ge=LONGITUDE_RANGE[0], le=LONGITUDE_RANGE[1], allow_inf_nan=False)
    tv: Flag
    elevator: Flag
    internet: Flag
    property_type: Annotated[Text, Field(min_length=1, max_length=100)] | None = Field(
        default=None, description='Inside Airbnb property type, e.g. "Entire rental unit"'
    )
    kitchen: Flag | None = None
    heating: Flag | None = None
    wifi: Flag | None = None
    air_conditioning: Flag | None = None
    breakfast: Flag | None = None


class Contribution(BaseModel):
    """How much one model feature pushed a listing's probability of its category."""

    feature: str = Field(description="The model's name of the feature", examples=["midtown_km"])
    label: str = Field(
        description="The feature as a person knows it", examples=["distance to Midtown (km)"]
    )
    listing_value: float | str | None = Field(
        description="The listing's value of the feature as the model read it: a category by "
        "name, a number as a number (a distance computed from the coordinates; a flag as 0 or "
        "1, or, left out, the share of training listings that have it)",
        examples=[3.2],
    )
    value: float = Field(
        description="Signed SHAP value in the model's output units: log-odds for gradient "
        "boosting (for a price blend, its classifier's), probability for forests; positive "
        "pushes towards the category"
    )


class Prediction(BaseModel):
    id: int | str
    price_category: PriceCategory
    probabilities: dict[PriceCategory, float]
    model_version: str
    estimated_price: float | None = Field(
        default=None,
        description="Estimated nightly price in dollars (models that estimate prices: absent "
        "from others' answers)",
        examples=[142.37],
    )
    price_interval: list[float] | None = Field(
        default=None,
        min_length=2,
        max_length=2,
        description="[low, high] nightly price in dollars, as wide as the model's out-of-fold "
        "errors require for the price to fall inside for 80% of listings (the candidate's "
        "interval parameter)",
        examples=[[98.4, 231.05]],
    )
    prediction_id: str = Field(
        description="This answer's id: name it in POST /feedback when the price is known",
        examples=["20261207-9f86d081884c7d659a2feaa0-0"],
    )
    explanation: list[Contribution] | None = Field(
        default=None, description="Top contributions towards price_category (?explain=true)"
    )


class BatchPrediction(BaseModel):
    model_version: str
    predictions: list[Prediction]


class FieldError(BaseModel):
    path: str = Field(description='Where the problem is, e.g. "bedrooms" or "[3].latitude"')
    message: str


class ErrorResponse(BaseModel):
    error: str = Field(description="Machine-readable kind, e.g. validation_error")
    message: str
    fields: list[FieldError] | None = None
    hint: str | None = None
    run_id: str | None = None


def _price(value: Any) -> Any:
    """A realised nightly price: a positive number, or Inside Airbnb's text ("$1,250.00")."""
    if isinstance(value, bool):
        raise ValueError('must be a number or a price such as "$1,250.00"')
    if isinstance(value, str):
        value = parse_price(value)
        if math.isnan(value):
            raise ValueError('must be a number or a price such as "$1,250.00"')
    if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ValueError("must be a price above 0")
    return float(value)


def _no_request_id(value: Any) -> Any:
    if value is not None:
        raise ValueError(
            "no longer names a prediction (an X-Request-ID is whatever a client sends, "
            "and can be another client's): send the prediction_id of the answer"
        )
    return value


class Feedback(BaseModel):
    """The price a listing the gateway answered really went for. The prediction is found by
    the answer's prediction_id, or by the listing's id: its latest prediction made before the
    price was reported (with both, the prediction must be of that listing)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"prediction_id": "20261207-9f86d081884c7d659a2feaa0-0", "price": "$150.00"}
            ]
        },
    )

    prediction_id: str | None = Field(
        default=None,
        pattern=r"^[0-9]{8}-[0-9a-f]{24}-[0-9]{1,5}$",
        description="The answer's prediction_id, as POST /predict gave it",
    )
    id: ListingId | None = Field(default=None, description="The listing's id, as predicted")
    request_id: Annotated[None, BeforeValidator(_no_request_id)] = Field(
        default=None,
        deprecated=True,
        description="Refused: name the prediction by its prediction_id (or the listing's id)",
    )
    price: Annotated[
        float,
        BeforeValidator(_price),
        WithJsonSchema({"anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "string"}]}),
    ] = Field(description='Realised nightly price: a number or raw text such as "$1,250.00"')

    @model_validator(mode="after")
    def _names_a_prediction(self) -> "Feedback":
        if self.id is None and self.prediction_id is None:
            raise ValueError("give the prediction's prediction_id or the listing's id (or both)")
        return self


class FeedbackAccepted(BaseModel):
    feedback_id: str
    accepted: int = Field(description="Prices received; joined to their predictions shortly")
    status_url: str


class RetrainRequest(BaseModel):
    """Optional body of POST /retrain."""

    model_config = ConfigDict(extra="forbid")

    data_path: Text | None = Field(
        default=None,
        max_length=500,
        description=(
            "A raw listings file under data/raw/, an MLflow artifact (runs:/<run id>/<path>), "
            "or where enabled an S3 object (s3://<bucket>/<key>)"
        ),
    )
    reason: Text | None = Field(default=None, max_length=2000, description="Stored as text")
    force: bool = Field(default=False, description="Queue even while another run is active")


def _version_number(value: Any) -> Any:
    """A registry version: a positive integer, as a number or as digits."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return str(value)
    if isinstance(value, str) and value.isascii() and value.isdigit() and int(value) > 0:
        return str(int(value))
    raise ValueError('must be a registry version: a positive integer such as 3 or "3"')


VersionNumber = Annotated[str, BeforeValidator(_version_number)]


class RollbackRequest(BaseModel):
    """Optional body of POST /model/rollback."""

    model_config = ConfigDict(extra="forbid")

    version: VersionNumber | None = Field(
        default=None,
        description="The version to serve; by default the one promoted before the champion",
    )
    pin: bool = Field(default=False, description="Also pin it: automatic promotions stop")
    reason: Text | None = Field(default=None, max_length=2000, description="Kept in the history")


class PinRequest(BaseModel):
    """Body of POST /model/pin."""

    model_config = ConfigDict(extra="forbid")

    pin: bool = Field(description="true pins the champion (the gate moves nothing); false lifts it")
    reason: Text | None = Field(default=None, max_length=2000, description="Kept in the history")


class ChallengerRequest(BaseModel):
    """Body of POST /model/challenger."""

    model_config = ConfigDict(extra="forbid")

    version: VersionNumber = Field(description="The registered version to try beside the champion")
    reason: Text | None = Field(default=None, max_length=2000, description="Kept in the history")


class ReasonRequest(BaseModel):
    """Optional body of DELETE /model/challenger and POST /model/challenger/promote."""

    model_config = ConfigDict(extra="forbid")

    reason: Text | None = Field(default=None, max_length=2000, description="Kept in the history")


class RetrainAccepted(BaseModel):
    run_id: str
    status_url: str
    data_path: str
