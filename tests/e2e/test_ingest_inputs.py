"""Bad reports get a 4xx whose JSON names the reason, store nothing, and the next good report is accepted."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from schoolops.wire import Report
from tests.support import Collector, metric_value

STREAM = "0123456789abcdef0123456789abcdef"


def report(asset: str = "web-01", seq: int = 1, **fields: object) -> dict[str, object]:
    body = msgspec.to_builtins(Report(
        schema=1, asset="web-01", stream=STREAM, seq=1, collected_at=time.time(), interval=15.0, agent_version="test",
    ))
    body.update(asset=asset, seq=seq, **fields)
    return body


def post(collector: Collector, body: bytes, *, token: str | None, content_type: str = "application/json",
         chunked: bool = False) -> tuple[int, dict[str, object]]:
    conn = http.client.HTTPConnection("127.0.0.1", collector.port, timeout=10)
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if chunked:
        conn.request("POST", "/api/v1/reports", body=iter([body[i:i + 65536] for i in range(0, len(body), 65536)]),
                     headers=headers, encode_chunked=True)
    else:
        conn.request("POST", "/api/v1/reports", body=body, headers=headers)
    response = conn.getresponse()
    payload = json.loads(response.read() or b"{}")
    conn.close()
    return response.status, payload


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    c = Collector(tmp_path_factory.mktemp("ingest"), extra={"ingest": {"max_body_bytes": "64KiB", "token_cache": "1s"}}).start()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def token(collector: Collector) -> str:
    return collector.token("web-01").read_text().strip()


def stored(collector: Collector) -> dict[str, dict[str, object]]:
    """What the store holds, without the relative 'N s ago' column."""
    return {name: {k: v for k, v in row.items() if k != "last_report"} for name, row in collector.assets().items()}


def encode(data: object) -> bytes:
    return json.dumps(data).encode()


BAD = {
    "no token": (lambda t: dict(body=encode(report()), token=None), 401, "missing_token"),
    "wrong token": (lambda t: dict(body=encode(report()), token=t[:-4] + "AAAA"), 401, "invalid_token"),
    "malformed token": (lambda t: dict(body=encode(report()), token="hunter2"), 401, "invalid_token"),
    "unknown token": (lambda t: dict(body=encode(report()), token="so_000000000000." + "A" * 43), 401, "invalid_token"),
    "malformed JSON": (lambda t: dict(body=b'{"schema": 1, "asset": "web-01",', token=t), 400, "malformed_json"),
    "not JSON at all": (lambda t: dict(body=b"\x00\xff garbage", token=t), 400, "malformed_json"),
    "wrong content type": (lambda t: dict(body=encode(report()), token=t, content_type="text/plain"), 415, "unsupported_media_type"),
    "schema version 2": (lambda t: dict(body=encode(report(schema=2)), token=t), 422, "unsupported_schema"),
    "schema version missing": (lambda t: dict(body=encode({k: v for k, v in report().items() if k != "schema"}), token=t), 422, "invalid_report"),
    "oversized body": (lambda t: dict(body=encode(report(agent_version="x" * 100_000)), token=t), 413, "body_too_large"),
    "oversized chunked body": (lambda t: dict(body=encode(report(agent_version="x" * 100_000)), token=t, chunked=True), 413, "body_too_large"),
    "asset with a path": (lambda t: dict(body=encode(report(asset="../../etc/passwd")), token=t), 422, "invalid_report"),
    "asset with SQL": (lambda t: dict(body=encode(report(asset="web-01'; DROP TABLE assets;--")), token=t), 422, "invalid_report"),
    "another asset's name": (lambda t: dict(body=encode(report(asset="web-02")), token=t), 403, "wrong_asset"),
    "negative seq": (lambda t: dict(body=encode(report(seq=-1)), token=t), 422, "invalid_report"),
    "zero seq": (lambda t: dict(body=encode(report(seq=0)), token=t), 422, "invalid_report"),
    "huge seq": (lambda t: dict(body=encode(report(seq=2**64)), token=t), 422, "invalid_report"),
    "seq beyond 2**53": (lambda t: dict(body=encode(report(seq=2**53)), token=t), 422, "invalid_report"),
    "negative counter": (lambda t: dict(body=encode(report(memory={"total": -1, "available": 0, "used": 0, "free": 0})), token=t), 422, "invalid_report"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_report_is_refused_with_a_reason_and_nothing_is_stored(
    case: str, collector: Collector, token: str
) -> None:
    make, status, code = BAD[case]
    before = stored(collector)
    rejected_before = metric_value(collector.metrics(), "schoolops_reports_rejected_total", reason=code)

    got_status, payload = post(collector, **make(token))

    assert got_status == status, payload
    assert payload["code"] == code
    assert isinstance(payload["reason"], str) and len(payload["reason"]) > 5
    assert token not in json.dumps(payload)
    assert stored(collector) == before  # nothing stored: no asset, no stream, no state
    assert metric_value(collector.metrics(), "schoolops_reports_rejected_total", reason=code) == (rejected_before or 0) + 1

    # the service keeps running and the next good report is accepted
    seq = int(before.get("web-01", {}).get("streams", [{}])[0].get("last_seq", 0)) + 1
    good_status, good = post(collector, encode(report(seq=seq)), token=token)
    assert (good_status, good["status"]) == (200, "applied")
    assert collector.assets()["web-01"]["streams"][0]["last_seq"] == seq


def test_replayed_report_is_acknowledged_but_not_applied_twice(collector: Collector, token: str) -> None:
    seq = 10_000
    first = post(collector, encode(report(seq=seq)), token=token)
    again = post(collector, encode(report(seq=seq)), token=token)
    older = post(collector, encode(report(seq=seq - 1)), token=token)
    assert first == (200, {"status": "applied", "seq": seq})
    assert again == (200, {"status": "duplicate", "seq": seq})
    assert older == (200, {"status": "duplicate", "seq": seq - 1})
    stream = collector.assets()["web-01"]["streams"][0]
    assert stream["last_seq"] == seq


def test_revoked_token_is_refused(collector: Collector, tmp_path: Path) -> None:
    from tests.support import cli

    path = collector.token("web-09")
    secret = path.read_text().strip()
    assert post(collector, encode(report(asset="web-09")), token=secret)[0] == 200
    token_id = secret.split(".")[0].removeprefix("so_")
    cli("token", "revoke", token_id, "--config", str(collector.config_path))
    listed = json.loads(cli("token", "list", "--json", "--config", str(collector.config_path)).stdout)
    assert {t["id"]: t["revoked"] for t in listed}[token_id] is True
    assert secret not in json.dumps(listed)
    # the collector caches a token for at most ingest.token_cache (1 s here)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status, payload = post(collector, encode(report(asset="web-09", seq=2)), token=secret)
        if status == 401:
            break
        time.sleep(1)
    assert (status, payload["code"]) == (401, "invalid_token")


def test_openapi_document_describes_ingest(collector: Collector) -> None:
    from tests.support import http_get

    status, body = http_get(f"{collector.url}/api/v1/openapi.json")
    doc = json.loads(body)
    assert status == 200 and doc["openapi"].startswith("3.")
    post_op = doc["paths"]["/api/v1/reports"]["post"]
    assert {"200", "400", "401", "403", "413", "415", "422"} <= set(post_op["responses"])
    assert "Report" in doc["components"]["schemas"]
