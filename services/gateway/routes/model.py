"""GET /model: the champion, and why it decides what it decides."""

from typing import Any

from flask import Blueprint

from services.gateway.state import gateway

blueprint = Blueprint("model", __name__)


@blueprint.get("/model")
def model_info() -> tuple[dict[str, Any], int]:
    state = gateway()
    model = state.champion()
    if model.info.get("importances") is None and model.info.get("run_id"):
        # Explain finishes after promotion: look until found, then keep it with the model.
        found = state.source.importances(model.info["run_id"])
        if found is not None:
            model.info["importances"] = found.get("mean_abs_shap", found)
    return {
        **model.info,
        "version": model.version,
        "loaded_at": model.loaded_at,
        "compiled_trees": model.compiled is not None,
    }, 200
