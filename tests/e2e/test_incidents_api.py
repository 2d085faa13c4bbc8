"""The people's API: who did what is recorded; refusals say why."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support import Collector, cli, http_get, people_file

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


def test_people_act_on_incidents_through_the_api(start_collector: Callable[..., Collector], tmp_path: Path) -> None:
    people = people_file(tmp_path / "oncall.yaml", {"wang.oncall": ["on-call"], "liu.director": ["director"]})
    collector = start_collector(extra={"incidents": {"tick_interval": "0.5s"}, "oncall_file": str(people)})
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


def test_inventory_is_changed_through_the_api_and_applied_without_a_restart(
    start_collector: Callable[..., Collector], tmp_path: Any
) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from tests.support import metric_value, wait_until

    class Ok(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    web = ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("assets:\n  - {name: web-01, kind: server}\n")
    people = people_file(tmp_path / "oncall.yaml", {"li.ops": ["admin"], "liu.director": ["director"]})
    collector = start_collector(extra={"inventory_file": str(inventory), "incidents": {"tick_interval": "0.5s"},
                                       "oncall_file": str(people)})
    token = cli("api-token", "create", "li.ops", "--config", str(collector.config_path)).stdout.strip()
    try:
        service = {"name": "library-portal", "kind": "service", "site": "library", "parents": ["web-01"],
                   "probes": [{"name": "home", "kind": "http", "target": f"http://127.0.0.1:{web.server_address[1]}/",
                               "interval": "1s"}]}
        status, created = call(collector, "PUT", "/api/v1/inventory/library-portal", token, service)
        assert status == 201 and created == {"name": "library-portal", "created": True}
        wait_until(lambda: metric_value(collector.metrics(), "schoolops_probe_up", asset="library-portal") == 1,
                   timeout=20, what="the new service probed without a restart")

        status, bad = call(collector, "PUT", "/api/v1/inventory/x", token, {"name": "x", "kind": "printer"})
        assert status == 422 and "kind" in bad["reason"]
        status, bad = call(collector, "PUT", "/api/v1/inventory/y", token, {"name": "y", "parents": ["nobody"]})
        assert status == 422 and "unknown asset 'nobody'" in bad["reason"]
        status, refused = call(collector, "DELETE", "/api/v1/inventory/web-01", token)
        assert status == 409 and "parent of library-portal" in refused["reason"]
        assert "library-portal" in inventory.read_text()  # nothing lost by the refusals
        status, listed = call(collector, "GET", "/api/v1/inventory", token)
        assert [a["name"] for a in listed] == ["web-01", "library-portal"]
        assert call(collector, "DELETE", "/api/v1/inventory/library-portal", token)[0] == 200
        assert "library-portal" not in inventory.read_text()
    finally:
        web.shutdown()
        web.server_close()
