"""HTTP plumbing: request ids, JSON errors, /healthz, /metrics and the OpenAPI document."""

from __future__ import annotations

import asyncio
import random

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from collector import keys
from collector.openapi import document

logger = structlog.get_logger("schoolops.web")


@web.middleware
async def request_context(request: web.Request, handler: web.Handler) -> web.StreamResponse:
    """Bind a request id to every log line of the request; answer every HTTP error as JSON."""
    # an id to find a request's lines by, not a secret: the cheap generator will do
    request_id = request.headers.get("X-Request-Id", "")[:64] or f"{random.getrandbits(64):016x}"
    structlog.contextvars.bind_contextvars(request_id=request_id)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = exc.reason.lower().replace(" ", "_")
        reason = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
        if exc.status == 413:
            code = "body_too_large"
        response = web.json_response({"status": "error", "code": code, "reason": reason}, status=exc.status)
    finally:
        structlog.contextvars.unbind_contextvars("request_id")
    response.headers["X-Request-Id"] = request_id
    return response


async def healthz(request: web.Request) -> web.Response:
    fleet = request.app[keys.FLEET]
    return web.json_response({"status": "ok", "assets": len(fleet.assets)})


async def metrics(request: web.Request) -> web.Response:
    """The registry's metrics and the fleet's series. The fleet is read here, on the loop that changes
    it; the text is written in a worker thread, so a page of many assets does not stall ingest."""
    registry = request.app[keys.REGISTRY]
    fleet = request.app[keys.METRICS].fleet.snapshot()
    body = await asyncio.to_thread(lambda: generate_latest(registry) + fleet.render())
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(document())


async def ingest_report(request: web.Request) -> web.Response:
    return await request.app[keys.INGEST].handle(request)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/v1/openapi.json", openapi)
    app.router.add_post("/api/v1/reports", ingest_report)
