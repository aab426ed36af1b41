"""The listing fields shared by training data, requests and the model, in one place."""

from bisect import bisect_left
from typing import Final, Literal, get_args

# The allowed values as types (the request contract's) and as tuples (everything else's).
PriceCategory = Literal["Low", "Mid", "High", "Lux"]
Neighbourhood = Literal["Bronx", "Brooklyn", "Manhattan", "Queens", "Staten Island"]
RoomType = Literal["Entire home/apt", "Private room", "Shared room", "Hotel room"]

# Label order used everywhere a probability vector is shown: cheapest to dearest.
PRICE_CATEGORIES: Final[tuple[str, ...]] = get_args(PriceCategory)
# Upper bounds (inclusive) of Low, Mid and High; anything above the last is Lux.
PRICE_BIN_EDGES: Final = (90.0, 180.0, 400.0)


def price_category(price: float) -> str:
    """The category a nightly price falls in (each upper bound inclusive: 90.0 is Low)."""
    return PRICE_CATEGORIES[bisect_left(PRICE_BIN_EDGES, price)]


NEIGHBOURHOODS: Final[tuple[str, ...]] = get_args(Neighbourhood)
ROOM_TYPES: Final[tuple[str, ...]] = get_args(RoomType)

AMENITY_FLAGS: Final = (
    "tv",
    "internet",
    "air_conditioning",
    "kitchen",
    "heating",
    "wifi",
    "elevator",
    "breakfast",
)
# Flags the challenge's request always carries; the others are optional.
REQUIRED_FLAGS: Final = ("tv", "elevator", "internet")
# Amenity flags a request may leave out (the challenge's example carries the others).
OPTIONAL_FLAGS: Final = tuple(flag for flag in AMENITY_FLAGS if flag not in REQUIRED_FLAGS)

COUNT_FIELDS: Final = ("accommodates", "bathrooms", "bedrooms", "beds")
CATEGORICAL_FIELDS: Final = ("neighbourhood", "room_type", "property_type")
COORDINATE_FIELDS: Final = ("latitude", "longitude")

# Every field a model may read, in the order the model receives them.
MODEL_INPUTS: Final = (
    "neighbourhood",
    "room_type",
    "property_type",
    *COUNT_FIELDS,
    *COORDINATE_FIELDS,
    *AMENITY_FLAGS,
)

# New York City and a margin around it: coordinates outside are not NYC listings.
LATITUDE_RANGE: Final = (40.40, 41.00)
LONGITUDE_RANGE: Final = (-74.35, -73.60)

TARGET: Final = "price_category"
# In cleaned data trained on realised prices: whether a row is one (POST /feedback).
FROM_FEEDBACK: Final = "from_feedback"

# Every model feature as a person knows it (explanations, plots and the CLI show these;
# a unit test holds every feature of every feature set labelled), derived ones included.
FEATURE_LABELS: dict[str, str] = {
    "neighbourhood": "borough",
    "room_type": "room type",
    "property_type": "property type",
    "accommodates": "guests",
    "bathrooms": "bathrooms",
    "bedrooms": "bedrooms",
    "beds": "beds",
    "latitude": "latitude",
    "longitude": "longitude",
    "tv": "TV",
    "internet": "internet",
    "air_conditioning": "air conditioning",
    "kitchen": "kitchen",
    "heating": "heating",
    "wifi": "wifi",
    "elevator": "elevator",
    "breakfast": "breakfast",
    "midtown_km": "distance to Midtown (km)",
    "midtown_dx": "km east of Midtown",
    "midtown_dy": "km north of Midtown",
}
