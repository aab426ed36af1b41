"""The notebook-era prototype, for comparison only: a Flask app that reads its config and
unpickles the model on every request, as the original prototype did. Never deploy this."""

import os
import pickle
from typing import Any

import pandas as pd
import yaml
from flask import Flask, request

app = Flask(__name__)


@app.post("/predict")
def predict() -> dict[str, Any]:
    with open(os.environ["NOTEBOOK_CONFIG"]) as handle:
        yaml.safe_load(handle)
    with open(os.environ["NOTEBOOK_MODEL"], "rb") as handle:
        model = pickle.load(handle)  # noqa: S301 - the prototype's way, reproduced to measure it
    listing = request.get_json()
    proba = model.predict_proba(pd.DataFrame([listing]))[0]
    labels = list(model.classes_)
    return {"id": listing["id"], "price_category": labels[int(proba.argmax())]}
