"""Load from a separate process: wrk posting one JSON body, its latency percentiles parsed."""

import json
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


@dataclass
class LoadResult:
    p50_ms: float
    p99_ms: float
    requests_per_second: float
    errors: int


def _milliseconds(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * _UNITS[unit]


def run_load(url: str, body: object, connections: int, seconds: int) -> LoadResult:
    """wrk at a given number of open connections for some seconds; non-2xx count as errors."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n')
        script.write(f"wrk.body = {json.dumps(json.dumps(body))}\n")
    command = [
        "wrk",
        "--latency",
        "-t",
        str(min(connections, 2)),
        "-c",
        str(connections),
        "-d",
        f"{seconds}s",
        "-s",
        script.name,
        url,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    Path(script.name).unlink()
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", output, re.MULTILINE))
    if len(percentiles) != 2:
        raise RuntimeError(f"wrk gave no p50 and p99 for {url}; it said:\n{output}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", output))
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    return LoadResult(
        _milliseconds(percentiles["50"]), _milliseconds(percentiles["99"]), rate, errors
    )
