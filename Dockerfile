# One image for every Python service: gateway, workers, MLflow server, rq-dashboard.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
RUN useradd --create-home --uid 10001 app

# Dependencies in their own layer: rebuilt only when pyproject.toml changes, not the code.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

COPY README.md ./
COPY shared ./shared
COPY services ./services
COPY config ./config
COPY data/raw ./data/raw
# Editable, so the code stays in /app beside config/ and data/, as in a checkout. Named
# volumes mounted on data/ and /mlartifacts start with this ownership: no service needs root.
RUN pip install --no-deps -e . \
 && mkdir -p data/processed /mlartifacts \
 && chown -R app:app /app/data /mlartifacts

ARG GIT_COMMIT=unknown
ENV GIT_COMMIT=${GIT_COMMIT}
USER app
EXPOSE 8000
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "services.gateway.wsgi:app"]
