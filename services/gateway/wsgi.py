"""Entry point for gunicorn: `gunicorn services.gateway.wsgi:app`."""

import gc

from threadpoolctl import threadpool_limits

from services.gateway.app import create_app
from services.gateway.logs import configure_json_logging

# gunicorn runs one process per core: native thread pools (OpenMP, BLAS) inside a prediction
# would only fight the other processes for the same cores.
threadpool_limits(1)
configure_json_logging()
app = create_app()
# Everything loaded so far lives as long as the process: keep it out of the garbage
# collector's full passes, which otherwise rescan it while a big batch allocates.
gc.freeze()
