import base64
import io
import json
import logging

import pytest

from services.gateway.logs import JsonFormatter
from shared.contracts import CHALLENGE_EXAMPLE

BEARER = "Bearer s3cret-token-0123456789"  # the unit settings' token
DASHBOARD_PASSWORD = "dashboard-pw-0123456789"  # and their dashboard password


def test_request_ids_are_echoed_or_made(client):
    given = client.post("/predict", json=CHALLENGE_EXAMPLE, headers={"X-Request-ID": "abc-123"})
    assert given.headers["X-Request-ID"] == "abc-123"
    made = client.get("/health/live")
    assert len(made.headers["X-Request-ID"]) == 32
    unsafe = client.get("/health/live", headers={"X-Request-ID": "<script>"})
    assert unsafe.headers["X-Request-ID"] != "<script>"


def test_the_access_line_is_written_once_the_response_is_sent(client, caplog):
    """The client does not wait for its request's log line (0.1-0.2 ms of a 0.9 ms
    prediction): it is written when the server closes the response."""
    with caplog.at_level(logging.INFO, logger="gateway.access"):
        reply = client.post("/predict", json=CHALLENGE_EXAMPLE, headers={"X-Request-ID": "r-42"})
        assert reply.status_code == 200
        assert _access_lines(caplog) == []
        reply.close()
    (line,) = _access_lines(caplog)
    assert line.getMessage() == "POST /predict 200"
    fields = line.__dict__["fields"]
    assert fields["request_id"] == "r-42" and fields["status"] == 200
    assert fields["method"] == "POST" and fields["path"] == "/predict"
    assert 0 < fields["duration_ms"] < 10_000
    assert json.loads(JsonFormatter().format(line))["request_id"] == "r-42"


def _access_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "gateway.access"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("get", "/predict", 405), ("get", "/nowhere", 404), ("delete", "/retrain", 405)],
)
def test_http_errors_are_json(client, method, path, status):
    reply = getattr(client, method)(path)
    assert reply.status_code == status
    assert reply.is_json and reply.get_json()["message"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic s3cret-token-0123456789"},
        {"Authorization": "Bearer"},
    ],
)
@pytest.mark.parametrize("operation", ["/retrain", "/monitor", "/feedback"])
def test_retrain_and_drift_checks_without_the_token_are_401(client, headers, operation):
    reply = client.post(operation, json={}, headers=headers)
    assert reply.status_code == 401
    assert reply.get_json()["error"] == "unauthorized"
    assert reply.get_json()["message"] == f"POST {operation} needs Authorization: Bearer <token>"


@pytest.mark.parametrize(
    "path",
    [
        "\x00",
        "data/raw/" + "x" * 300,
        "../../etc/passwd",
        # Markup in a file name would reach the job and its error text, which rq-dashboard
        # renders as HTML.
        "data/raw/x-<img src=x onerror=alert(1)>.csv",
        'data/raw/a"b.csv',
    ],
)
def test_unusable_data_paths_are_400_naming_the_field(client, path):
    reply = client.post(
        "/retrain",
        json={"data_path": path},
        headers={"Authorization": BEARER},
    )
    assert reply.status_code == 400
    assert reply.get_json()["fields"][0]["path"] == "data_path"


def test_retrain_while_redis_is_away_is_503_naming_it(client):
    # The unit settings point Redis at a port where nothing listens.
    reply = client.post("/retrain", json={}, headers={"Authorization": BEARER})
    assert reply.status_code == 503
    assert reply.get_json()["error"] == "redis_unavailable"
    assert reply.headers["Retry-After"] == "5"


@pytest.mark.parametrize(
    ("body", "path", "status"),
    [
        ([{"id": 1}], "[0].price", 422),
        ([{"id": 1, "price": 90}, {"id": 2, "price": "ninety"}], "[1].price", 422),
        ([{"price": 100}], "[0]", 422),
        ({"id": "r", "price": -5}, "[0].price", 422),
        ({"request_id": "r", "price": 5}, "[0].request_id", 422),  # anyone's X-Request-ID
        ([{"id": "caf\ud800", "price": 5}], "[0].id", 422),  # a lone surrogate
        ([{"id": 1, "price": 5}, {"id": 2, "price": 6}, {"id": 1, "price": 7}], "[2].id", 422),
        ([{"id": 1, "price": 5}, {"id": "1", "price": 6}], "[1].id", 422),  # one listing
        (
            [{"prediction_id": f"20261207-{'a' * 24}-0", "price": p} for p in (5, 6)],
            "[1].prediction_id",
            422,
        ),
        ([{"id": 1, "price": 100, "extra": 1}], "[0].extra", 422),
        ([], "(body)", 422),
        ("prices", "(body)", 422),
    ],
)
def test_malformed_feedback_is_a_4xx_naming_the_field(client, body, path, status):
    reply = client.post("/feedback", json=body, headers={"Authorization": BEARER})
    assert reply.status_code == status, reply.get_json()
    assert reply.get_json()["fields"][0]["path"] == path


def test_more_prices_than_a_batch_holds_are_413(client):
    body = [{"id": i, "price": 100} for i in range(4)]  # the unit settings' max_batch is 3
    reply = client.post("/feedback", json=body, headers={"Authorization": BEARER})
    assert reply.status_code == 413


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/monitor"), ("post", "/monitor"), ("post", "/feedback"), ("get", "/feedback/x")],
)
def test_the_monitor_while_redis_is_away_is_503_naming_it(client, method, path):
    body = [{"id": 1, "price": 100}] if path == "/feedback" else None
    reply = getattr(client, method)(path, json=body, headers={"Authorization": BEARER})
    assert reply.status_code == 503
    assert reply.get_json()["error"] == "redis_unavailable"


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.mark.parametrize(
    "headers", [{}, _basic("admin", "wrong"), _basic("root", DASHBOARD_PASSWORD)]
)
def test_dashboard_needs_its_credentials(client, headers):
    reply = client.get("/rq/", headers=headers)
    assert reply.status_code == 401
    assert reply.headers["WWW-Authenticate"].startswith("Basic")


def test_openapi_document_comes_from_the_contract(client):
    document = client.get("/openapi.json").get_json()
    assert document["openapi"].startswith("3.0")
    listing = document["components"]["schemas"]["Listing"]
    assert set(listing["required"]) == set(CHALLENGE_EXAMPLE)
    assert listing["additionalProperties"] is False
    assert listing["properties"]["neighbourhood"]["enum"][0] == "Bronx"
    assert listing["properties"]["property_type"]["nullable"] is True
    batch = document["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert batch["application/json"]["schema"]["oneOf"][1]["maxItems"] == 3
    answer = document["components"]["schemas"]["Prediction"]["properties"]
    assert answer["estimated_price"]["nullable"] is True
    assert answer["price_interval"]["items"] == {"type": "number"}
    assert answer["price_interval"]["minItems"] == answer["price_interval"]["maxItems"] == 2
    text = client.get("/openapi.json").get_data(as_text=True)
    assert '"type": "null"' not in text
    assert "prefixItems" not in text  # OpenAPI 3.1's; 3.0 tools reject it


def test_docs_page_and_its_assets_are_served(client):
    page = client.get("/docs")
    assert page.status_code == 200 and b"SwaggerUIBundle" in page.data
    asset = client.get("/docs/static/swagger-ui-bundle.js")
    asset.close()  # a file response: close it, as a server would
    assert asset.status_code == 200


def test_metrics_count_requests_and_predictions(client):
    # Counted before the response leaves: a client that has its answer finds it counted.
    client.post("/predict", json=CHALLENGE_EXAMPLE)
    client.post("/predict", json={"bad": 1})
    text = client.get("/metrics").get_data(as_text=True)
    assert 'gateway_requests_total{endpoint="/predict",method="POST",status="200"} 1.0' in text
    assert 'gateway_requests_total{endpoint="/predict",method="POST",status="422"} 1.0' in text
    assert "gateway_predictions_total{category=" in text
    assert "gateway_model_version 7.0" in text
    assert "gateway_request_seconds_bucket" in text


@pytest.mark.parametrize("limit", ["0", "201", "-1", "ten", "²", "１０", "1.5", ""])
def test_a_bad_runs_limit_is_422_naming_it(client, limit):
    reply = client.get("/runs", query_string={"limit": limit})
    assert reply.status_code == 422
    assert reply.get_json()["fields"] == [{"path": "?limit", "message": "1 to 200"}]


@pytest.mark.parametrize("depth", [990, 2_000])  # 4,000 bytes: under the unit body cap
@pytest.mark.parametrize("path", ["/predict", "/retrain"])
def test_json_nested_too_deeply_is_400_not_500(client, path, depth):
    body = "[" * depth + "]" * depth
    reply = client.post(
        path, data=body, content_type="application/json", headers={"Authorization": BEARER}
    )
    assert reply.status_code == 400, reply.get_data(as_text=True)[:200]
    assert reply.get_json()["error"] == "malformed_json"


def post_chunked(client, body: bytes):
    """POST /predict with a chunked body (no Content-Length), as gunicorn hands it on: it ends
    the body itself and says so (wsgi.input_terminated); werkzeug reads it up to the cap."""
    return client.post(
        "/predict",
        input_stream=io.BytesIO(body),
        content_type="application/json",
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )


def test_a_chunked_body_over_the_cap_is_413_not_parsed_cut(client, settings):
    over = b'"' + b"x" * settings.max_body_bytes + b'"'  # valid JSON whole, invalid cut
    reply = post_chunked(client, over)
    assert reply.status_code == 413, reply.get_data(as_text=True)[:200]
    assert reply.get_json()["error"] == "request_entity_too_large"


def test_a_chunked_body_at_the_cap_is_read_whole(client, settings):
    body = json.dumps(CHALLENGE_EXAMPLE).encode()
    body += b" " * (settings.max_body_bytes - len(body))  # exactly the cap
    reply = post_chunked(client, body)
    assert reply.status_code == 200, reply.get_data(as_text=True)[:200]
