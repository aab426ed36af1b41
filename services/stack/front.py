"""The gateway's buffering front (nginx) as a local process, on the config compose uses.

deploy/nginx/gateway.conf.template is the server block; here it is filled in and wrapped in
the few top-level lines a non-daemon nginx needs to keep its files in one folder.
"""

import os
import pwd
import shutil
import subprocess
from pathlib import Path
from string import Template

from services.stack import processes
from shared.settings import PROJECT_DIR

TEMPLATE = PROJECT_DIR / "deploy" / "nginx" / "gateway.conf.template"


def nginx_binary() -> str:
    """nginx from PATH, or where Debian installs it (/usr/sbin is not on every user's PATH)."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    if found is None:
        raise FileNotFoundError("nginx is not installed: run `sudo apt-get install nginx`")
    return found


def server_block(upstream: str, listen: str) -> str:
    """The template's server block for the gunicorn at upstream (host:port or unix:path),
    listening at listen ([host:]port)."""
    return Template(TEMPLATE.read_text()).safe_substitute(
        GATEWAY_UPSTREAM=upstream, FRONT_LISTEN=listen
    )


def _worker_user() -> str:
    """As root, nginx would drop its workers to nobody, who cannot reach their buffer folders
    in the state folder (mode 700, like any private folder above it): they run as the user
    that runs the stack, as every other process of it does."""
    if os.geteuid() != 0:
        return ""  # nginx keeps the user it runs as
    return f"user {pwd.getpwuid(os.geteuid()).pw_name};\n"


def nginx_config(folder: Path, upstream: str, port: int) -> str:
    """A whole nginx config: in the foreground, its pid, log and buffers under folder."""
    temp_paths = "".join(
        f"    {kind}_temp_path {folder / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"daemon off;\n{_worker_user()}worker_processes 1;\n"
        f"pid {folder / 'nginx.pid'};\nerror_log {folder / 'front.log'} warn;\n"
        "events { worker_connections 4096; }\n"
        # The gateway logs every request itself; nginx logs only its own errors.
        f"http {{\n    access_log off;\n{temp_paths}"
        f"{server_block(upstream, f'127.0.0.1:{port}')}\n}}\n"
    )


def start_front(
    folder: Path, upstream: str, port: int | None = None
) -> tuple[subprocess.Popen, int]:
    """Start nginx on a loopback port (a free one unless given) in front of the gunicorn at
    upstream, and wait until it listens."""
    folder.mkdir(parents=True, exist_ok=True)
    port = port or processes.free_port()
    config = folder / "nginx.conf"
    config.write_text(nginx_config(folder, upstream, port))
    command = [
        nginx_binary(),
        "-p",
        str(folder),
        "-c",
        str(config),
        "-e",
        str(folder / "front.log"),
    ]
    process = processes.start_logged(command, folder / "front.log")
    processes.wait_for_start(lambda: processes.tcp_open(port), 20, "nginx (front)", process)
    return process, port
