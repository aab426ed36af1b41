"""Every operation the gateway serves is documented, and every documented one is served."""

import re

from services.gateway.openapi import build_document

# Served, but not operations of the JSON API: its own documentation, Prometheus' text format,
# the dashboard mounted under /rq, and Flask's static files.
NOT_API = re.compile(r"^/(openapi\.json|docs(/.*)?|metrics|rq(/.*)?|static/.*)$")


def test_the_url_map_and_the_openapi_document_name_the_same_operations(app):
    served = {
        (re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if not NOT_API.match(rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    documented = {
        (path, method)
        for path, operations in build_document(max_batch=3)["paths"].items()
        for method in operations
    }

    assert served == documented
