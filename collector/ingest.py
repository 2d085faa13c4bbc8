"""POST /api/v1/reports: authenticate, validate, apply once, update the fleet view.

Every refusal is a 4xx whose JSON body says why, and stores nothing. A report whose sequence
number was already applied is acknowledged (200, ``duplicate``) so the agent can drop it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import msgspec
import structlog
from aiohttp import web

from collector import tokens
from collector.fleet import AssetView, Fleet
from collector.metrics import CollectorMetrics
from collector.store import AgentToken, ApplyOutcome, IncomingReport, Store
from schoolops.wire import ReportError, decode_report

logger = structlog.get_logger("schoolops.ingest")
_answer = msgspec.json.Encoder()

ReportListener = Callable[[AssetView], Awaitable[None]]


def rejection(status: int, code: str, reason: str) -> web.Response:
    return web.json_response({"status": "rejected", "code": code, "reason": reason}, status=status)


class Ingest:
    def __init__(
        self, store: Store, fleet: Fleet, metrics: CollectorMetrics, *, max_body_bytes: int,
        token_cache_seconds: float = 30.0, clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.fleet = fleet
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.clock = clock
        self.token_cache_seconds = token_cache_seconds
        self.listeners: list[ReportListener] = []  # rules and incidents subscribe here
        self._accepted = {outcome: metrics.accepted.labels(result=outcome.value) for outcome in ApplyOutcome}
        self._tokens: dict[str, tuple[AgentToken, float]] = {}

    def _reject(self, status: int, code: str, reason: str, **context: object) -> web.Response:
        self.metrics.rejected.labels(reason=code).inc()
        logger.warning("report_rejected", code=code, reason=reason, **context)
        return rejection(status, code, reason)

    async def _authenticate(self, header: str | None) -> AgentToken | web.Response:
        if not header or not header.startswith("Bearer "):
            return self._reject(401, "missing_token", "send the agent token as 'Authorization: Bearer <token>'")
        parsed = tokens.parse(header[len("Bearer "):].strip())
        if parsed is None:
            return self._reject(401, "invalid_token", "the token is malformed")
        token_id, secret = parsed
        now = self.clock()
        cached = self._tokens.get(token_id)
        if cached is None or cached[1] < now:
            record = await self.store.find_token(token_id)
            if record is None:
                self._tokens.pop(token_id, None)
                return self._reject(401, "invalid_token", "unknown or revoked token", token_id=token_id)
            await self.store.touch_token(token_id, now)
            cached = self._tokens[token_id] = (record, now + self.token_cache_seconds)
        record = cached[0]
        if not tokens.verify(record, secret):
            return self._reject(401, "invalid_token", "unknown or revoked token", token_id=token_id)
        return record

    async def handle(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        token = await self._authenticate(request.headers.get("Authorization"))
        if isinstance(token, web.Response):
            return token
        if request.content_type != "application/json":
            return self._reject(415, "unsupported_media_type", "send the report as application/json")
        if request.content_length is not None and request.content_length > self.max_body_bytes:
            return self._too_large(request.content_length)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._too_large(None)
        try:
            report = decode_report(body)
        except ReportError as exc:
            status = 400 if exc.code == "malformed_json" else 422
            return self._reject(status, exc.code, exc.message, asset=token.asset)
        if report.asset != token.asset:
            return self._reject(
                403, "wrong_asset", f"this token belongs to asset {token.asset!r}, the report names {report.asset!r}",
                asset=token.asset,
            )
        received_at = self.clock()
        result = await self.store.apply_report(
            IncomingReport(
                asset=report.asset, stream=report.stream, seq=report.seq, site=report.labels.site,
                role=report.labels.role, tier=report.labels.tier, received_at=received_at, body=body,
            )
        )
        self._accepted[result.outcome].inc()
        self.metrics.ingest_seconds.observe(time.perf_counter() - started)
        if result.outcome is ApplyOutcome.APPLIED:
            if result.missing:
                self.metrics.missing.inc(result.missing)
                logger.warning("reports_missing", asset=report.asset, missing=result.missing, seq=report.seq)
            view = self.fleet.update(report, received_at)
            for listener in self.listeners:
                await listener(view)
            logger.debug("report_applied", asset=report.asset, seq=report.seq, site=view.labels.site)
        else:
            logger.info("report_duplicate", asset=report.asset, seq=report.seq)
        return web.Response(body=_answer.encode({"status": result.outcome.value, "seq": report.seq}),
                            content_type="application/json")

    def _too_large(self, length: int | None) -> web.Response:
        size = f"{length} bytes" if length is not None else "the body"
        return self._reject(413, "body_too_large", f"{size} exceeds the limit of {self.max_body_bytes} bytes")
