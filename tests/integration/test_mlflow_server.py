"""The MLflow server the stack starts (the same command and settings as `make run` and
compose): it serves the registry, and nothing else burns the cores the workers train on."""

from pathlib import Path

from services.stack import processes


def _tree(pid: int) -> list[int]:
    return [pid, *(p for child in processes.children(pid) for p in _tree(child))]


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return ""


def test_the_mlflow_server_runs_no_job_runners(stack):
    """MLflow 3 starts server-side job runners by default (Huey consumers for GenAI scorers
    and trace archival) that poll without pause, about one core of this machine's two; the
    project runs none of their jobs."""
    commands = [_command(pid) for pid in _tree(stack.services["mlflow"].pid)]

    assert any("uvicorn" in command for command in commands), commands  # the tree was read
    runners = [c for c in commands if "huey" in c or "mlflow.server.jobs" in c]
    assert runners == []
