"""The agent's HTTP client for the control plane."""

from __future__ import annotations

from typing import Any

import httpx


class ControlPlaneUnavailable(Exception):
    """Unreachable, timed out or answered 5xx: back off and try again."""


class NotRegistered(Exception):
    """404: the control plane does not know this node (or a pool); register again."""


class Refused(Exception):
    """Another 4xx: the request itself is wrong (bad token, invalid config)."""


class ControlPlane:
    def __init__(self, base_url: str, token: str, timeout_s: float = 10.0) -> None:
        self.http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(timeout_s, connect=5.0),
        )

    def use_token(self, token: str) -> None:
        self.http.headers["Authorization"] = f"Bearer {token}"

    def register(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/v2/nodes/register", body)

    def heartbeat(self, node_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", f"/v2/nodes/{node_id}/heartbeat", body)

    def deregister(self, node_id: str) -> None:
        self._call("DELETE", f"/v2/nodes/{node_id}", None)

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        try:
            response = self.http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise ControlPlaneUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code == 404:
            raise NotRegistered(response.text[:300])
        if response.status_code >= 500:
            raise ControlPlaneUnavailable(f"{response.status_code}: {response.text[:300]}")
        if response.status_code >= 400:
            raise Refused(f"{response.status_code}: {response.text[:300]}")
        if response.status_code == 204 or not response.content:
            return {}
        data: dict[str, Any] = response.json()
        return data
