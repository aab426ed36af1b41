"""Entry point for gunicorn: `gunicorn services.gateway.wsgi:app`."""

from services.gateway.app import create_app
from services.gateway.logs import configure_json_logging

configure_json_logging()
app = create_app()
