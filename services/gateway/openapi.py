"""GET /openapi.json, generated from the contract models, and GET /docs, a Swagger UI page.

The document is OpenAPI 3.0.3 (what the bundled Swagger UI renders); pydantic writes JSON
Schema 2020-12, so the few constructs 3.0 lacks are rewritten by `to_openapi30`.
"""

from typing import Any

from flask import Blueprint, Response, send_from_directory
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from swagger_ui_bundle import swagger_ui_path

from services.gateway.state import gateway
from shared.contracts import (
    BatchPrediction,
    ErrorResponse,
    Listing,
    Prediction,
    RetrainAccepted,
    RetrainRequest,
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
        409: "A run is already queued or in progress",
        413: "Body or batch too large",
        415: "Body is not JSON",
        422: "Invalid fields, each named with its path",
        503: "No champion yet, or a backing service is unavailable",
    }
    return {str(s): _json(_ref("ErrorResponse"), meaning[s]) for s in statuses}


def build_document(max_batch: int) -> dict[str, Any]:
    """The API's OpenAPI document."""
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        (Listing, "validation"),
        (RetrainRequest, "validation"),
        (Prediction, "serialization"),
        (BatchPrediction, "serialization"),
        (ErrorResponse, "serialization"),
        (RetrainAccepted, "serialization"),
    ]
    _, schemas = models_json_schema(models, ref_template=REF)
    listings = {
        "oneOf": [
            _ref("Listing"),
            {"type": "array", "items": _ref("Listing"), "minItems": 1, "maxItems": max_batch},
        ]
    }
    explain = {
        "name": "explain",
        "in": "query",
        "required": False,
        "schema": {"type": "boolean"},
        "description": "Add top SHAP contributions",
    }
    anything = {"type": "object", "additionalProperties": True}
    paths = {
        "/predict": {
            "post": {
                "summary": "Price category of a listing, or of each listing of an array, in order",
                "parameters": [explain],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": listings}},
                },
                "responses": {
                    "200": _json(
                        {"oneOf": [_ref("Prediction"), _ref("BatchPrediction")]}, "Predictions"
                    ),
                    **_errors(400, 413, 415, 422, 503),
                },
            }
        },
        "/retrain": {
            "post": {
                "summary": "Queue a pipeline run (prep, train, select, explain)",
                "security": [{"bearer": []}],
                "requestBody": {
                    "required": False,
                    "content": {"application/json": {"schema": _ref("RetrainRequest")}},
                },
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string", "maxLength": 200},
                    }
                ],
                "responses": {
                    "202": _json(_ref("RetrainAccepted"), "Run queued"),
                    **_errors(400, 401, 409, 415, 422, 503),
                },
            }
        },
        "/runs": {
            "get": {
                "summary": "Recent runs, newest first",
                "parameters": [
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 200},
                    }
                ],
                "responses": {"200": _json(anything, "Runs"), **_errors(422)},
            }
        },
        "/runs/{run_id}": {
            "get": {
                "summary": "A run's state per stage, candidates' scores, version and decision",
                "parameters": [
                    {"name": "run_id", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {"200": _json(anything, "Run status"), **_errors(404)},
            }
        },
        "/model": {
            "get": {
                "summary": "The champion: version, scores, provenance, importances",
                "responses": {"200": _json(anything, "Champion"), **_errors(503)},
            }
        },
        "/health/live": {
            "get": {"summary": "The process is up", "responses": {"200": _json(anything, "Alive")}}
        },
        "/health/ready": {
            "get": {
                "summary": "Redis, MLflow and a champion are available",
                "responses": {"200": _json(anything, "Ready"), "503": _json(anything, "Not ready")},
            }
        },
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
