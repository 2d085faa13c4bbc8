"""The people's API: who did what is recorded; refusals say why."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from tests.support import Collector, cli, http_get

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def call(collector: Collector, method: str, path: str, token: str | None, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{collector.url}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with _DIRECT.open(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_people_act_on_incidents_through_the_api(start_collector: Callable[..., Collector]) -> None:
    collector = start_collector(extra={"incidents": {"tick_interval": "0.5s"}})
    token = cli("api-token", "create", "wang.oncall", "--config", str(collector.config_path)).stdout.strip()

    assert call(collector, "GET", "/api/v1/incidents", None)[0] == 401
    assert call(collector, "GET", "/api/v1/incidents", "so_000000000000." + "A" * 43)[0] == 401

    status, created = call(collector, "POST", "/api/v1/faults", token,
                           {"description": "library Wi-Fi down", "site": "library", "type": "network", "severity": "P3"})
    assert status == 201 and created["incident"]
    number = created["incident"]

    status, bad = call(collector, "POST", "/api/v1/faults", token, {"description": "x", "asset": "a", "site": "b"})
    assert status == 422 and "either the asset or the site" in bad["reason"]
    status, bad = call(collector, "POST", "/api/v1/maintenance", token,
                       {"scope": {}, "ends_at": time.time() + 60, "owner": "li", "reason": "x"})
    assert status == 422 and "scope" in bad["reason"]

    status, acked = call(collector, "POST", f"/api/v1/incidents/{number}/acknowledge", token, {"note": "on my way"})
    assert status == 200 and acked["state"] == "acknowledged" and acked["acknowledged_by"] == "wang.oncall"
    status, again = call(collector, "POST", f"/api/v1/incidents/{number}/acknowledge", token, {})
    assert status == 409 and "acknowledged" in again["reason"]
    status, missing = call(collector, "POST", "/api/v1/incidents/999/resolve", token, {})
    assert status == 404

    status, detail = call(collector, "GET", f"/api/v1/incidents/{number}", token)
    assert status == 200 and detail["site"] == "library"
    ack = [e for e in detail["timeline"] if e["kind"] == "acknowledge"][0]
    assert ack["actor"] == "wang.oncall" and "on my way" in ack["text"]

    status, listed = call(collector, "GET", "/api/v1/incidents?state=acknowledged", token)
    assert [i["id"] for i in listed] == [number]

    doc = json.loads(http_get(f"{collector.url}/api/v1/openapi.json")[1])
    assert {"/api/v1/incidents", "/api/v1/incidents/{id}/acknowledge", "/api/v1/maintenance", "/api/v1/faults"} <= set(doc["paths"])
    assert token not in collector.process.log()  # type: ignore[union-attr]
