"""The SQL store: SQLAlchemy Core over SQLite (WAL) today, PostgreSQL through the same queries later.

SQLAlchemy's engine is blocking, so every call runs on one dedicated worker thread, and SQLite never
sees two writers from this process. Reports are applied in groups: those that arrive while the
worker is busy are applied together, in one transaction and one thread hop, when it is free
(group commit) — each caller still gets its own result only after the commit. The statements of
the report path are built once, with bind parameters, so a report costs SQL rather than
statement construction.
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
            try:
                results = await self._run(lambda conn, g=group: [apply_report(conn, report) for report, _ in g])  # type: ignore[misc]
            except Exception:  # noqa: BLE001 - one bad report must not fail the others: apply each alone
                for report, future in group:
                    try:
                        result = await self._run(lambda conn, r=report: apply_report(conn, r))  # type: ignore[misc]
                    except Exception as exc:  # noqa: BLE001 - handed to the caller, who answers 5xx
                        if not future.done():
                            future.set_exception(exc)
                    else:
                        if not future.done():
                            future.set_result(result)
                continue
            for (_, future), result in zip(group, results, strict=True):
                if not future.done():  # the caller may have gone (request cancelled)
                    future.set_result(result)

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


def _insert_ignore(conn: Connection, table: sa.Table, values: dict[str, Any]) -> bool:
    """INSERT unless the primary key exists (SQLite and PostgreSQL alike); True if this call inserted."""
    dialect = conn.dialect.name
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
    else:
        raise StoreError(f"unsupported database: {dialect}")
    return conn.execute(insert(table).values(**values).on_conflict_do_nothing()).rowcount == 1


# The report path's statements, built once: executing them costs SQL, not statement construction.
# (Bind names differ from column names: SQLAlchemy reserves those for the SET clause.)
_STREAM = (report_streams.c.asset == sa.bindparam("b_asset")) & (report_streams.c.stream == sa.bindparam("b_stream"))
_STREAM_LAST_SEQ = sa.select(report_streams.c.last_seq).where(_STREAM)
_STREAM_ADVANCE = (
    report_streams.update()
    .where(_STREAM & (report_streams.c.last_seq == sa.bindparam("b_expected")))
    .values(last_seq=sa.bindparam("b_seq"), applied=report_streams.c.applied + 1,
            missing=report_streams.c.missing + sa.bindparam("b_missing"), last_seen=sa.bindparam("b_at"))
)
_STREAM_DUPLICATE = report_streams.update().where(_STREAM).values(duplicates=report_streams.c.duplicates + 1)
_FIRST_STREAM = sa.select(sa.func.count()).where(report_streams.c.asset == sa.bindparam("b_asset"))


def _agent_label(column: sa.Column[Any], value: str) -> sa.Case[Any]:
    """An agent's label applies unless the inventory owns the asset's labels."""
    return sa.case((assets.c.labels_source == "agent", sa.bindparam(value)), else_=column)


_ASSET_REPORTED = (
    assets.update()
    .where(assets.c.name == sa.bindparam("b_asset"))
    .values(last_report_at=sa.bindparam("b_at"), site=_agent_label(assets.c.site, "b_site"),
            role=_agent_label(assets.c.role, "b_role"), tier=_agent_label(assets.c.tier, "b_tier"))
)
_LATEST_REPLACE = (
    asset_latest.update()
    .where(asset_latest.c.asset == sa.bindparam("b_asset"))
    .values(stream=sa.bindparam("b_stream"), seq=sa.bindparam("b_seq"), received_at=sa.bindparam("b_at"),
            body=sa.bindparam("b_body"))
)


def apply_report(conn: Connection, report: IncomingReport) -> ApplyResult:
    """Apply a report unless its (asset, stream, seq) is not newer than the stream's high-water mark.

    Compare-and-set throughout, so two collectors racing on the same report apply it once: the
    loser counts a duplicate and writes nothing else.
    """
    key = {"b_asset": report.asset, "b_stream": report.stream}
    row = conn.execute(_STREAM_LAST_SEQ, key).one_or_none()
    if row is None:
        first = conn.execute(_FIRST_STREAM, {"b_asset": report.asset}).scalar_one() == 0
        missing = report.seq - 1 if first else 0
        if _insert_ignore(conn, report_streams, {
            "asset": report.asset, "stream": report.stream, "last_seq": report.seq, "applied": 1, "duplicates": 0,
            "missing": missing, "first_seen": report.received_at, "last_seen": report.received_at,
        }):
            _register_asset(conn, report)
            _upsert_latest(conn, report)
            return ApplyResult(ApplyOutcome.APPLIED, missing=missing)
        row = conn.execute(_STREAM_LAST_SEQ, key).one()  # another writer created the stream first
    if report.seq > row.last_seq:
        missing = report.seq - row.last_seq - 1
        moved = conn.execute(_STREAM_ADVANCE, {**key, "b_expected": row.last_seq, "b_seq": report.seq,
                                               "b_missing": missing, "b_at": report.received_at}).rowcount
        if moved == 1:
            _register_asset(conn, report)
            _upsert_latest(conn, report)
            return ApplyResult(ApplyOutcome.APPLIED, missing=missing)
    conn.execute(_STREAM_DUPLICATE, key)
    return ApplyResult(ApplyOutcome.DUPLICATE)


def _register_asset(conn: Connection, report: IncomingReport) -> None:
    seen = conn.execute(_ASSET_REPORTED, {"b_asset": report.asset, "b_at": report.received_at, "b_site": report.site,
                                          "b_role": report.role, "b_tier": report.tier}).rowcount
    if seen:
        return
    if not _insert_ignore(conn, assets, {
        "name": report.asset, "kind": "server", "site": report.site, "role": report.role, "tier": report.tier,
        "labels_source": "agent", "parents": "[]", "created_at": report.received_at,
        "updated_at": report.received_at, "last_report_at": report.received_at,
    }):  # another writer registered it meanwhile
        _register_asset(conn, report)


def _upsert_latest(conn: Connection, report: IncomingReport) -> None:
    values = {"b_asset": report.asset, "b_stream": report.stream, "b_seq": report.seq, "b_at": report.received_at,
              "b_body": report.body}
    if conn.execute(_LATEST_REPLACE, values).rowcount:
        return
    if not _insert_ignore(conn, asset_latest, {"asset": report.asset, "stream": report.stream, "seq": report.seq,
                                               "received_at": report.received_at, "body": report.body}):
        conn.execute(_LATEST_REPLACE, values)


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
