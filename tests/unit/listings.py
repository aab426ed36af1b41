"""Tiny raw-listing frames built in the tests, dirty the way real Inside Airbnb dumps are."""

import json

import pandas as pd

GOOD_ROW = {
    "id": 1,
    "listing_url": "https://www.airbnb.com/rooms/1",
    "neighbourhood_group_cleansed": "Brooklyn",
    "latitude": 40.66,
    "longitude": -73.99,
    "property_type": "Entire rental unit",
    "room_type": "Entire home/apt",
    "accommodates": 4,
    "bathrooms": None,
    "bathrooms_text": "1.5 baths",
    "bedrooms": 2.0,
    "beds": 2.0,
    "amenities": json.dumps(["Heating", "Kitchen", "TV", "Wifi"]),
    "price": "$275.00",
    "host_name": "extra columns are ignored",
}


def raw_frame(*changes: dict) -> pd.DataFrame:
    """One raw row per change dict, each the good row with those fields replaced."""
    rows = [{**GOOD_ROW, "id": i + 1, **change} for i, change in enumerate(changes or ({},))]
    return pd.DataFrame(rows)
