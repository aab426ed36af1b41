"""One drain of the prediction log that kills itself (SIGKILL, as the OOM killer or a lost node
would) at a chosen point of its first batch: `python -m tests.reliability.drain_until_killed
REDIS_URL STREAM FOLDER POINT`, POINT one of:

- mid-write: the first file's bytes written, not yet renamed into place;
- after-write: the first batch's files in place, its entries not yet acknowledged.
"""

import os
import signal
import sys
from dataclasses import replace
from pathlib import Path

from services.workers import drain as drain_module
from shared import prediction_store
from shared.queues import connect

# The test's entries make several batches, and a batch several reads.
SMALL_BATCH = 50  # listings
SMALL_READ = 2  # entries


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main(redis_url: str, stream: str, folder: str, point: str) -> None:
    write_table = prediction_store.pq.write_table
    sink = drain_module.prediction_sink(Path(folder))
    write = sink.write

    def write_table_then_die(*args, **kwargs):
        write_table(*args, **kwargs)
        _die()

    def write_then_die(batch):
        write(batch)
        _die()

    if point == "mid-write":
        prediction_store.pq.write_table = write_table_then_die
    elif point == "after-write":
        sink = replace(sink, write=write_then_die)
    else:
        raise SystemExit(f"unknown point {point!r}")
    drain_module.BATCH_LISTINGS, drain_module.READ_COUNT = SMALL_BATCH, SMALL_READ
    drain_module.drain(connect(redis_url), stream, sink, 30, 2, 60)
    raise SystemExit("drained without dying")


if __name__ == "__main__":
    main(*sys.argv[1:])
