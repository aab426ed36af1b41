# One image for every Python service: gateway, workers, MLflow server, rq-dashboard.
# BASE_IMAGE: any Debian-based image with Python 3.11; where no registry is reachable,
# deploy/offline-images.sh builds one from Debian's packages and passes it here.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS system
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
# No git in the image (GIT_COMMIT names the code): GitPython, which MLflow and the workers
# import, then stays quiet instead of failing the import.
ENV GIT_PYTHON_REFRESH=quiet
# LightGBM's OpenMP runtime; a C compiler, with which the gateway compiles the champion's trees
# (shared/compiled_trees.py); and the user every service runs as.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 gcc libc6-dev \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && useradd --create-home --uid 10001 app

# The dependencies, in a stage of their own: the wheels copied in for the install stay here,
# out of the final image. Every package is pinned with its hashes by requirements.lock. A
# wheelhouse/ folder in the build context (deploy/offline-images.sh fills it with the host's
# pip) is installed from with no index at all; without one, pip reaches its index as usual.
# (The wildcard lets COPY succeed when there is no wheelhouse.)
FROM system AS dependencies
COPY requirements.lock wheelhouse* /tmp/install/
RUN python3 -m venv /opt/venv \
 && if ls /tmp/install/*.whl >/dev/null 2>&1; then offline="--no-index --find-links /tmp/install"; fi \
 && pip install --require-hashes ${offline:-} -r /tmp/install/requirements.lock

FROM system
COPY --from=dependencies /opt/venv /opt/venv
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
COPY config ./config
COPY data/raw ./data/raw
# Editable, so the code stays in /app beside config/ and data/, as in a checkout (setuptools
# comes from the lock, hence no build isolation). Named volumes mounted on data/ and
# /mlartifacts start with this ownership: no service needs root.
RUN pip install --no-deps --no-index --no-build-isolation -e . \
 && mkdir -p data/processed /mlartifacts \
 && chown -R app:app /app/data /mlartifacts

ARG GIT_COMMIT=unknown
ENV GIT_COMMIT=${GIT_COMMIT}
USER app
EXPOSE 8000
CMD ["gunicorn", "--config", "python:services.gateway.gunicorn_conf", "--bind", "0.0.0.0:8000", "services.gateway.wsgi:app"]
