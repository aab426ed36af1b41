"""A node-local copy of the served champion: a restarted gateway serves it before MLflow answers.

Without it a gateway that starts again (its gunicorn master killed, its container restarted)
serves nothing until MLflow answers and the champion is downloaded again: seconds of 503s, or
as long as MLflow is away. Each process that loads a champion from MLflow keeps its skops file
here, as stored in MLflow; a process starting serves the copy at once, then keeps in step with
the alias as always (a version promoted meanwhile replaces it at the first look at MLflow).

The copy is checked before it is loaded: `champion.json` names the version, the SHA-256 of its
skops file and what /model reports about it; a file whose digest differs (a torn write, a file
changed by hand) is not loaded, and the gateway waits for MLflow as before. The file is loaded
like any model (skops, this code's trusted types only) and proven on the challenge's example.
Files are written under a temporary name and renamed (shared.storage): a process killed
mid-write leaves the last complete copy. Every process of a host may write the same copy: the
same version gives the same bytes, and a file is named by its digest.
"""

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from services.gateway.champion import LoadedModel
from shared.model_files import UntrustedModelError, load_trusted_skops
from shared.storage import write_bytes_atomic, write_json_atomic

log = logging.getLogger(__name__)

RECORD = "champion.json"


class ChampionCopy:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def save(self, model: LoadedModel, skops_file: bytes) -> None:
        """Keep this version's skops file and record as the copy (unless it already is)."""
        digest = hashlib.sha256(skops_file).hexdigest()
        if self._record().get("sha256") == digest:
            return
        write_bytes_atomic(skops_file, self.folder / f"{digest}.skops")
        record = {"version": model.version, "sha256": digest, "info": model.info}
        write_json_atomic(record, self.folder / RECORD)
        for older in self.folder.glob("*.skops"):
            if older.stem != digest:
                older.unlink(missing_ok=True)

    def load(self, prove: Any) -> LoadedModel | None:
        """The copied champion, proven by prove(pipeline); None when there is none, or none
        this code can trust (said why in the log)."""
        record = self._record()
        if not record:
            return None
        try:
            data = (self.folder / f"{record['sha256']}.skops").read_bytes()
            if hashlib.sha256(data).hexdigest() != record["sha256"]:
                raise UntrustedModelError("its skops file does not match its digest")
            pipeline = load_trusted_skops(data)
            prove(pipeline)
        except Exception as error:  # noqa: BLE001 - any fault: wait for MLflow, as without a copy
            log.warning("champion copy in %s not served: %s", self.folder, error)
            return None
        return LoadedModel(str(record["version"]), pipeline, dict(record.get("info") or {}))

    def _record(self) -> dict[str, Any]:
        try:
            record = json.loads((self.folder / RECORD).read_text())
        except (OSError, ValueError):
            return {}
        return record if isinstance(record, dict) and "sha256" in record else {}
