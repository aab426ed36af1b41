"""GET /openapi.json, generated from the contract models, and GET /docs, a Swagger UI page.

The document is OpenAPI 3.0.3 (what the bundled Swagger UI renders); pydantic writes JSON
Schema 2020-12, so the few constructs 3.0 lacks are rewritten by `to_openapi30`.
"""

from pathlib import Path
from typing import Any

import yaml
from flask import Blueprint, Response, send_from_directory
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from swagger_ui_bundle import swagger_ui_path

from services.gateway.state import gateway
from shared.contracts import (
    BatchPrediction,
    ChallengerRequest,
    ErrorResponse,
    Feedback,
    FeedbackAccepted,
    Listing,
    PinRequest,
    Prediction,
    ReasonRequest,
    RetrainAccepted,
    RetrainRequest,
    RollbackRequest,
)

blueprint = Blueprint("openapi", __name__)
REF = "#/components/schemas/{model}"


def to_openapi30(node: Any) -> Any:
    """Rewrite JSON Schema 2020-12 into the OpenAPI 3.0 dialect, recursively."""
    if isinstance(node, list):
        return [to_openapi30(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: to_openapi30(value) for key, value in node.items() if key != "propertyNames"}
    if "const" in node:
        node["enum"] = [node.pop("const")]
    for exclusive, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if not isinstance(node.get(exclusive, False), bool):  # 2020-12's number: 3.0's flag
            node[bound], node[exclusive] = node[exclusive], True
    if "examples" in node and isinstance(node["examples"], list):
        node["example"] = node.pop("examples")[0]
    for key in ("anyOf", "oneOf"):
        options = node.get(key)
        if isinstance(options, list) and {"type": "null"} in options:
            rest = [option for option in options if option != {"type": "null"}]
            node.pop(key)
            node.update(rest[0] if len(rest) == 1 else {key: rest})
            node["nullable"] = True
    if "$ref" in node and len(node) > 1:  # 3.0 ignores siblings of $ref: wrap it
        node = {"allOf": [{"$ref": node.pop("$ref")}], **node}
    return node


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def _errors(*statuses: int) -> dict[str, Any]:
    meaning = {
        400: "Malformed request",
        401: "Missing or wrong token",
        404: "Not found",
        409: "Conflicts with the state things are in (a run in progress, a promotion being "
        "decided, the champion pinned, ...): `error` says which",
        413: "Body or batch too large",
        415: "Body is not JSON",
        422: "Invalid fields, each named with its path",
        429: "Too many explanations at once (explain_busy): retry after the Retry-After "
        "header's seconds",
        503: "No champion yet, or a backing service is unavailable",
    }
    return {str(s): _json(_ref("ErrorResponse"), meaning[s]) for s in statuses}


PATHS = Path(__file__).with_name("openapi_paths.yaml")
CONTRACT_MODELS: list[tuple[type[BaseModel], JsonSchemaMode]] = [
    (Listing, "validation"),
    (RetrainRequest, "validation"),
    (RollbackRequest, "validation"),
    (PinRequest, "validation"),
    (ChallengerRequest, "validation"),
    (ReasonRequest, "validation"),
    (Prediction, "serialization"),
    (BatchPrediction, "serialization"),
    (ErrorResponse, "serialization"),
    (RetrainAccepted, "serialization"),
    (Feedback, "validation"),
    (FeedbackAccepted, "serialization"),
]


def _schema(name: str | list[str], max_batch: int) -> dict[str, Any]:
    """A schema from its short name in openapi_paths.yaml."""
    if isinstance(name, list):
        return {"oneOf": [_ref(one) for one in name]}
    if name == "anything":
        return {"type": "object", "additionalProperties": True}
    if name in ("listings", "feedback"):  # one object, or an array of up to max_batch
        one = _ref("Listing" if name == "listings" else "Feedback")
        array = {"type": "array", "items": one, "minItems": 1, "maxItems": max_batch}
        return {"oneOf": [one, array]}
    return _ref(name)


def _operation(spec: dict[str, Any], max_batch: int) -> dict[str, Any]:
    """One operation of openapi_paths.yaml in OpenAPI form."""
    operation = {k: v for k, v in spec.items() if k in ("summary", "parameters", "security")}
    if body := spec.get("body"):
        content = {"application/json": {"schema": _schema(body["schema"], max_batch)}}
        operation["requestBody"] = {"required": body["required"], "content": content}
    operation["responses"] = {
        str(a["status"]): _json(_schema(a["schema"], max_batch), a["description"])
        for a in spec["answers"]
    } | _errors(*spec.get("errors", []))
    return operation


def build_document(max_batch: int) -> dict[str, Any]:
    """The API's OpenAPI document."""
    _, schemas = models_json_schema(CONTRACT_MODELS, ref_template=REF)
    paths = {
        path: {method: _operation(spec, max_batch) for method, spec in methods.items()}
        for path, methods in yaml.safe_load(PATHS.read_text()).items()
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Listing price-category service",
            "version": "1.0.0",
            "description": "Predicts Low / Mid / High / Lux nightly prices of New York "
            "listings; retrains through queued pipeline runs.",
        },
        "paths": paths,
        "components": {
            "schemas": to_openapi30(schemas["$defs"]),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


DOCS_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Price-category API</title>
<link rel="stylesheet" href="docs/static/swagger-ui.css"></head>
<body><div id="ui"></div><script src="docs/static/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "openapi.json", dom_id: "#ui"});</script></body></html>"""


@blueprint.get("/openapi.json")
def openapi_document() -> dict[str, Any]:
    return build_document(gateway().settings.max_batch)


@blueprint.get("/docs")
def docs() -> Response:
    return Response(DOCS_PAGE, mimetype="text/html")


@blueprint.get("/docs/static/<path:name>")
def docs_static(name: str) -> Response:
    return send_from_directory(swagger_ui_path, name)
