"""The SQL store: SQLAlchemy Core over SQLite (WAL) today, PostgreSQL through the same queries later.

SQLAlchemy's engine is blocking, so every call runs on one dedicated worker thread, and SQLite never
sees two writers from this process. Reports are applied in groups: those that arrive while the
worker is busy are applied together, in one transaction and one thread hop, when it is free
(group commit), with one read of their streams and one write per stream, asset and latest report
(:mod:`collector.store.streams`) — each caller still gets its own result only after the commit.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy.engine import Connection, Engine

from collector.store import (
    AgentToken,
    ApplyOutcome,
    ApplyResult,
    Asset,
    IncomingReport,
    InventoryAsset,
    LatestReport,
    ReportStream,
    StoreError,
)
from collector.store.streams import GroupConflict, apply_report, apply_reports
from collector.store.tables import agent_tokens, api_tokens, asset_latest, assets, report_streams

T = TypeVar("T")
MIGRATIONS = Path(__file__).parent / "migrations"
MAX_GROUP = 256  # reports applied in one transaction at most


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes; WAL keeps it consistent
    cursor.execute("PRAGMA busy_timeout=10000")  # the CLI may write while the collector runs
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class SqlStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self._pending: list[tuple[IncomingReport, asyncio.Future[ApplyResult]]] = []
        self._applying: asyncio.Task[None] | None = None
        self._streams: dict[str, tuple[str, int]] = {}  # asset → (stream, last_seq) as last committed here

    @classmethod
    def open(cls, url: str) -> SqlStore:
        """Open the database and bring its schema up to date (blocking; call at start-up)."""
        engine = sa.create_engine(url)
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine, "connect", _on_sqlite_connect)
        store = cls(engine)
        try:
            store.migrate()
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"cannot open the store at {engine.url.render_as_string(hide_password=True)}: {exc}") from exc
        return store

    def migrate(self) -> None:
        config = AlembicConfig()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    async def run(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in one transaction on the store's worker thread."""
        return await self._run(fn)

    async def _run(self, fn: Callable[[Connection], T]) -> T:
        def work() -> T:
            with self.engine.begin() as conn:
                return fn(conn)

        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    def run_sync(self, fn: Callable[[Connection], T]) -> T:
        """For the CLI: the same transaction discipline without an event loop."""
        with self.engine.begin() as conn:
            return fn(conn)

    async def close(self) -> None:
        if self._applying is not None:  # reports already taken in are applied (and answered) first
            await asyncio.gather(self._applying, return_exceptions=True)
        await asyncio.get_running_loop().run_in_executor(self._executor, self.engine.dispose)
        self._executor.shutdown(wait=True)

    # --- reports ------------------------------------------------------------------------------
    async def apply_report(self, report: IncomingReport) -> ApplyResult:
        """Apply ``report`` in the next group transaction; returns once that transaction committed."""
        future: asyncio.Future[ApplyResult] = asyncio.get_running_loop().create_future()
        self._pending.append((report, future))
        if self._applying is None or self._applying.done():
            self._applying = asyncio.create_task(self._apply_pending(), name="store-apply-reports")
        return await future

    async def _apply_pending(self) -> None:
        while self._pending:
            group, self._pending = self._pending[:MAX_GROUP], self._pending[MAX_GROUP:]
            reports = [report for report, _ in group]
            try:
                try:  # (only this task changes self._streams, and not while the worker reads it)
                    results = await self._run(lambda conn, g=reports: apply_reports(conn, g, self._streams))  # type: ignore[misc]
                except GroupConflict:  # rolled back: one after the other, as the group came
                    results = await self._run(lambda conn, g=reports: [apply_report(conn, r) for r in g])  # type: ignore[misc]
            except Exception:  # noqa: BLE001 - one bad report must not fail the others: apply each alone
                for report, future in group:
                    try:
                        result = await self._run(lambda conn, r=report: apply_report(conn, r))  # type: ignore[misc]
                    except Exception as exc:  # noqa: BLE001 - handed to the caller, who answers 5xx
                        if not future.done():
                            future.set_exception(exc)
                    else:
                        self._committed(report, result)
                        if not future.done():
                            future.set_result(result)
                continue
            for (report, future), result in zip(group, results, strict=True):
                self._committed(report, result)
                if not future.done():  # the caller may have gone (request cancelled)
                    future.set_result(result)

    def _committed(self, report: IncomingReport, result: ApplyResult) -> None:
        """Remember an applied report's stream and seq: the next group need not read them again."""
        if result.outcome is ApplyOutcome.APPLIED:
            self._streams[report.asset] = (report.stream, report.seq)

    async def latest_reports(self) -> list[LatestReport]:
        def query(conn: Connection) -> list[LatestReport]:
            rows = conn.execute(sa.select(asset_latest.c.asset, asset_latest.c.received_at, asset_latest.c.body))
            return [LatestReport(asset=r.asset, received_at=r.received_at, body=bytes(r.body)) for r in rows]

        return await self._run(query)

    async def list_streams(self, asset: str | None = None) -> list[ReportStream]:
        return await self._run(lambda conn: list_streams(conn, asset))

    # --- tokens -------------------------------------------------------------------------------
    async def create_token(self, token: AgentToken) -> None:
        await self._run(lambda conn: create_token(conn, token))

    async def find_token(self, token_id: str) -> AgentToken | None:
        def query(conn: Connection) -> AgentToken | None:
            row = conn.execute(sa.select(agent_tokens).where(agent_tokens.c.id == token_id)).one_or_none()
            return AgentToken(**row._mapping) if row else None

        return await self._run(query)

    async def touch_token(self, token_id: str, now: float) -> None:
        await self._run(
            lambda conn: conn.execute(
                agent_tokens.update().where(agent_tokens.c.id == token_id).values(last_used_at=now)
            )
        )

    async def revoke_token(self, token_id: str, now: float) -> bool:
        return await self._run(lambda conn: revoke_token(conn, token_id, now))

    async def list_tokens(self) -> list[AgentToken]:
        return await self._run(list_tokens)

    # --- assets -------------------------------------------------------------------------------
    async def list_assets(self) -> list[Asset]:
        return await self._run(list_assets)

    async def sync_inventory(self, items: list[InventoryAsset], now: float) -> None:
        await self._run(lambda conn: sync_inventory(conn, items, now))


# The queries, as plain functions of a connection: the async store and the CLI share them.


def list_streams(conn: Connection, asset: str | None = None) -> list[ReportStream]:
    query = sa.select(report_streams).order_by(report_streams.c.asset, report_streams.c.first_seen)
    if asset is not None:
        query = query.where(report_streams.c.asset == asset)
    return [ReportStream(**row._mapping) for row in conn.execute(query)]


def create_token(conn: Connection, token: AgentToken) -> None:
    conn.execute(
        agent_tokens.insert().values(
            id=token.id, asset=token.asset, secret_hash=token.secret_hash, created_at=token.created_at
        )
    )


def revoke_token(conn: Connection, token_id: str, now: float) -> bool:
    result = conn.execute(
        agent_tokens.update()
        .where((agent_tokens.c.id == token_id) & agent_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return result.rowcount == 1


def list_tokens(conn: Connection) -> list[AgentToken]:
    rows = conn.execute(sa.select(agent_tokens).order_by(agent_tokens.c.asset, agent_tokens.c.created_at))
    return [AgentToken(**row._mapping) for row in rows]


def list_assets(conn: Connection) -> list[Asset]:
    rows = conn.execute(sa.select(assets).order_by(assets.c.name))
    return [
        Asset(
            name=r.name, kind=r.kind, site=r.site, role=r.role, tier=r.tier, labels_source=r.labels_source,
            parents=tuple(json.loads(r.parents)), created_at=r.created_at, last_report_at=r.last_report_at,
        )
        for r in rows
    ]


def sync_inventory(conn: Connection, items: list[InventoryAsset], now: float) -> None:
    """Make the inventory's labels authoritative for the assets it names (others keep agent labels)."""
    for item in items:
        values = {
            "kind": item.kind, "site": item.site, "role": item.role, "tier": item.tier,
            "labels_source": "inventory", "parents": json.dumps(list(item.parents)), "updated_at": now,
        }
        if conn.execute(assets.update().where(assets.c.name == item.name).values(**values)).rowcount == 0:
            conn.execute(assets.insert().values(name=item.name, created_at=now, last_report_at=None, **values))
    names = [item.name for item in items]
    # assets dropped from the inventory go back to the labels their agent sends
    conn.execute(
        assets.update()
        .where((assets.c.labels_source == "inventory") & assets.c.name.not_in(names))
        .values(labels_source="agent", updated_at=now)
    )


# --- API tokens (people and scripts; roles arrive with users) -----------------------------------


def create_api_token(conn: Connection, token_id: str, user: str, secret_hash: str, at: float) -> None:
    conn.execute(api_tokens.insert().values(id=token_id, user=user, secret_hash=secret_hash, created_at=at))


def find_api_token(conn: Connection, token_id: str) -> AgentToken | None:
    """The token as an AgentToken whose ``asset`` is the user's name (same checks apply)."""
    row = conn.execute(sa.select(api_tokens).where(api_tokens.c.id == token_id)).one_or_none()
    if row is None:
        return None
    return AgentToken(id=row.id, asset=row.user, secret_hash=row.secret_hash, created_at=row.created_at,
                      revoked_at=row.revoked_at, last_used_at=row.last_used_at)
