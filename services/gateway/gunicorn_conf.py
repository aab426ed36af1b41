"""gunicorn's configuration for the gateway (`gunicorn -c python:services.gateway.gunicorn_conf`).

It sets nothing: loading it is the point. gunicorn's master imports this module before it forks
its workers, so the gateway's libraries (Flask, scikit-learn, LightGBM, SHAP, MLflow; about
3.5 s of CPU) are imported once and shared by every worker, instead of once per worker on the
same cores: a start or a worker's restart serves sooner, and the workers share those pages.
Nothing here connects, starts a thread or loads a model; each worker still builds its own app
(services.gateway.wsgi) after the fork.
"""

import services.gateway.app  # noqa: F401 - imported for its side effect: the modules loaded
