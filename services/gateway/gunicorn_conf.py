"""gunicorn's configuration for the gateway (`gunicorn -c python:services.gateway.gunicorn_conf`).

gunicorn's master loads this module before it forks its workers:

- It imports the gateway's libraries (Flask, scikit-learn, LightGBM, SHAP, MLflow; about 3.5 s
  of CPU) once, shared by every worker, instead of once per worker on the same cores: a start
  or a worker's restart serves sooner, and the workers share those pages. Nothing here
  connects, starts a thread or loads a model; each worker still builds its own app
  (services.gateway.wsgi) after the fork.
- It makes the folder of the explanation slots every worker shares (admission control:
  services.gateway.admission), removed when the master exits.
- It makes the workers' Prometheus metrics one set: each worker writes its values to files in
  a folder of this master's (prometheus-client's multiprocess mode, chosen by
  PROMETHEUS_MULTIPROC_DIR before the library is first imported), and /metrics, whichever
  worker answers it, adds them up. The folder starts empty, a dead worker's live gauges are
  dropped, and the folder goes when the master exits.
"""

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

METRICS_FOLDER = "PROMETHEUS_MULTIPROC_DIR"  # read by prometheus-client when first imported

_given = os.environ.get(METRICS_FOLDER)
if _given:  # a folder the deployment chose: last run's values must not count again
    for _stale in Path(_given).glob("*.db"):
        _stale.unlink()
else:
    os.environ[METRICS_FOLDER] = tempfile.mkdtemp(prefix="gateway-metrics-")

from prometheus_client import multiprocess  # noqa: E402
from redis.exceptions import RedisError  # noqa: E402

import services.gateway.app  # noqa: E402, F401 - imported for its side effect: the modules loaded
from services.gateway.admission import SLOTS_FOLDER, slots_folder  # noqa: E402
from services.gateway.prediction_log import forget_writer  # noqa: E402
from shared.queues import connect  # noqa: E402
from shared.settings import get_settings  # noqa: E402

# The explanation slots' lock files, one folder for every worker (services.gateway.admission).
_own_slots = SLOTS_FOLDER not in os.environ
slots_folder()


def child_exit(server: Any, worker: Any) -> None:
    """A worker ended (restarted, killed): its live gauges stop counting, and the monitor stops
    waiting for it to write the prediction log further."""
    multiprocess.mark_process_dead(worker.pid)
    settings = get_settings()
    redis = connect(settings.redis_url, timeout=settings.gateway_redis_timeout)
    try:
        forget_writer(redis, settings.prediction_log_stream, worker.pid)
    except RedisError:  # Redis away: the monitor forgets a silent writer on its own
        pass
    finally:
        redis.close()


def on_exit(server: Any) -> None:
    if not _given:
        shutil.rmtree(os.environ[METRICS_FOLDER], ignore_errors=True)
    if _own_slots:
        shutil.rmtree(os.environ[SLOTS_FOLDER], ignore_errors=True)


# Its own refusals (an over-long request line, too many headers) in the gateway's JSON.
worker_class = "services.gateway.http_worker.JsonErrorWorker"
