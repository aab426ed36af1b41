"""A small HTTP client of the gateway's API, used by the command line and the local runner."""

import time
from collections.abc import Callable
from typing import Any

import requests

TERMINAL_STATES = ("finished", "failed")


class ClientError(Exception):
    """The gateway refused or could not be reached; the message says why. status and body are
    the gateway's answer, when it gave one."""

    def __init__(self, message: str, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status, self.body = status, body


class GatewayClient:
    def __init__(self, url: str, token: str | None = None, timeout: float = 30) -> None:
        self.url, self.token, self.timeout = url.rstrip("/"), token, timeout
        self.session = requests.Session()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            reply = self.session.request(method, self.url + path, timeout=self.timeout, **kwargs)
        except requests.RequestException as error:
            raise ClientError(f"cannot reach the gateway at {self.url}: {error}") from None
        body = (
            reply.json()
            if reply.headers.get("Content-Type", "").startswith("application/json")
            else {}
        )
        if not reply.ok:
            fields = "; ".join(f"{f['path']}: {f['message']}" for f in body.get("fields") or [])
            detail = body.get("message", reply.text[:200]) + (f" ({fields})" if fields else "")
            raise ClientError(f"{reply.status_code} {detail}", reply.status_code, body)
        return body

    def predict(self, listings: dict[str, Any] | list[dict[str, Any]]) -> Any:
        return self._call("POST", "/predict", json=listings)

    def _authorized(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def retrain(
        self, data_path: str | None = None, reason: str | None = None, force: bool = False
    ) -> dict[str, Any]:
        body = {"data_path": data_path, "reason": reason, "force": force}
        return dict(self._call("POST", "/retrain", json=body, headers=self._authorized()))

    def rollback(
        self, version: str | None = None, pin: bool = False, reason: str | None = None
    ) -> dict[str, Any]:
        body = {"version": version, "pin": pin, "reason": reason}
        return dict(self._call("POST", "/model/rollback", json=body, headers=self._authorized()))

    def pin(self, pin: bool, reason: str | None = None) -> dict[str, Any]:
        body = {"pin": pin, "reason": reason}
        return dict(self._call("POST", "/model/pin", json=body, headers=self._authorized()))

    def challenger(self) -> dict[str, Any]:
        return dict(self._call("GET", "/model/challenger"))

    def set_challenger(self, version: str, reason: str | None = None) -> dict[str, Any]:
        body = {"version": version, "reason": reason}
        return dict(self._call("POST", "/model/challenger", json=body, headers=self._authorized()))

    def remove_challenger(self, reason: str | None = None) -> dict[str, Any]:
        body = {"reason": reason}
        return dict(
            self._call("DELETE", "/model/challenger", json=body, headers=self._authorized())
        )

    def promote_challenger(self, reason: str | None = None) -> dict[str, Any]:
        body = {"reason": reason}
        path = "/model/challenger/promote"
        return dict(self._call("POST", path, json=body, headers=self._authorized()))

    def history(self) -> dict[str, Any]:
        return dict(self._call("GET", "/model/history"))

    def run(self, run_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/runs/{run_id}"))

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        return list(self._call("GET", f"/runs?limit={limit}")["runs"])

    def model(self) -> dict[str, Any]:
        return dict(self._call("GET", "/model"))

    def follow(
        self,
        run_id: str,
        on_change: Callable[[dict[str, Any]], None],
        timeout: float = 900,
        interval: float = 1.0,
    ) -> dict[str, Any]:
        """Poll a run until it ends, calling on_change whenever a stage's state changes."""
        deadline, seen = time.monotonic() + timeout, None
        while True:
            run = self.run(run_id)
            states = {name: stage["state"] for name, stage in run["stages"].items()}
            if states != seen:
                on_change(run)
                seen = states
            if run["state"] in TERMINAL_STATES:
                return run
            if time.monotonic() > deadline:
                raise ClientError(f"run {run_id} still {run['state']} after {timeout:.0f}s")
            time.sleep(interval)
