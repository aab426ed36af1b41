"""The RQ worker class every stage worker runs: `rq worker --worker-class` imports this module
in the long-lived worker process, before any job.

RQ forks a work-horse per job, and a horse that has to import the stages itself pays for
MLflow, scikit-learn, LightGBM and SHAP on every job (seconds each). Imported here, once,
they are inherited by every fork. Nothing here starts a thread or a connection, so forking
stays safe.
"""

# Imported for their side effect, loaded modules. Besides the stages: what MLflow imports
# lazily while logging a model (GitPython for source tags, pyfunc, skops) and pyarrow's
# Parquet reader, found by diffing sys.modules around one training job.
import git  # noqa: F401
import mlflow.models  # noqa: F401
import mlflow.pyfunc  # noqa: F401
import pyarrow.dataset  # noqa: F401
import pyarrow.parquet  # noqa: F401
import skops.io  # noqa: F401
from rq import Worker

import services.workers.explain  # noqa: F401
import services.workers.prep  # noqa: F401
import services.workers.select  # noqa: F401
import services.workers.train  # noqa: F401


class PreloadedWorker(Worker):
    """rq's Worker, whose module has the stage jobs and their libraries loaded."""
