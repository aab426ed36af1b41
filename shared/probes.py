"""Is a service up? One small HTTP probe, used by whatever waits for a server or checks one."""

import urllib.request


def answers_ok(url: str, timeout: float = 2.0) -> bool:
    """Whether a GET of url answers 200 within timeout (refused, an error status, a timeout or
    a malformed URL all say no)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            return bool(reply.status == 200)
    except (OSError, ValueError):  # urllib's HTTPError and URLError are OSErrors
        return False


def mlflow_answers(tracking_uri: str) -> bool:
    """Whether the MLflow tracking server at tracking_uri answers its health check."""
    return answers_ok(f"{tracking_uri.rstrip('/')}/health")
