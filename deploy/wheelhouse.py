"""The entries of a hash-pinned lock that an image's Python needs, for `pip download`.

pip evaluates a lock's markers against the Python it runs on. The wheelhouse is filled by this
host's Python for an image's, and their patch versions differ (Debian bookworm's 3.11.2 needs
async-timeout, whose marker is `python_full_version < '3.11.3'`; a newer 3.11 does not). So the
markers are evaluated here for the image's version, on this host's platform (the image's too),
and the entries kept are printed without them, hashes and all.

    python3 deploy/wheelhouse.py requirements.lock 3.11.2 > needed.txt
"""

import sys

try:
    from packaging.markers import Marker
except ImportError:  # a bare Python: pip carries its own copy
    from pip._vendor.packaging.markers import Marker


def entries(lock: str) -> list[list[str]]:
    """The lock's entries: each a requirement line with its indented hash and comment lines."""
    found: list[list[str]] = []
    for line in lock.splitlines():
        if line.startswith(" ") and found:
            found[-1].append(line)
        elif line and not line.startswith("#"):
            found.append([line])
    return found


def needed(lock: str, python_full_version: str) -> str:
    environment = {
        "python_full_version": python_full_version,
        "python_version": ".".join(python_full_version.split(".")[:2]),
    }
    kept = []
    for requirement, *rest in entries(lock):
        pinned, _, marker = requirement.removesuffix("\\").partition(";")
        if marker.strip() and not Marker(marker.strip()).evaluate(environment):
            continue
        hashes = [line for line in rest if line.strip().startswith("--hash")]
        kept.append(" \\\n".join([pinned.strip(), *(h.strip(" \\") for h in hashes)]))
    return "\n".join(kept) + "\n"


if __name__ == "__main__":
    with open(sys.argv[1]) as lock:
        sys.stdout.write(needed(lock.read(), sys.argv[2]))
