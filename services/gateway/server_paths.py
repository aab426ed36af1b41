"""Run records as the API shows them: no absolute path of the server's file system.

GET /runs needs no credentials, and a stage's outputs and errors name files (the cleaned
dataset, a raw file that would not parse). Paths inside the project are shown relative to it,
as requests give them; any other absolute path keeps only its file name.
"""

import re
from pathlib import Path
from typing import Any

# An absolute path of two parts or more, not inside a URL or a relative path.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])/(?:[^\s/'\"]+/)+([^\s/'\"]*)")


def without_server_paths(value: Any, project_dir: Path) -> Any:
    """value (a run record, or any JSON value) with its absolute paths hidden."""
    if isinstance(value, str):
        relative = value.replace(f"{project_dir.resolve()}/", "")
        return _ABSOLUTE_PATH.sub(lambda match: f".../{match.group(1)}", relative)
    if isinstance(value, dict):
        return {key: without_server_paths(item, project_dir) for key, item in value.items()}
    if isinstance(value, list):
        return [without_server_paths(item, project_dir) for item in value]
    return value
