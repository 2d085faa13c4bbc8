"""The SQL store against a real SQLite file: exactly-once reports, labels, tokens, migrations, two instances."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from collector.store import AgentToken, ApplyOutcome, IncomingReport, InventoryAsset
from collector.store.sql import SqlStore, sqlite_url

APPLIED, DUPLICATE = ApplyOutcome.APPLIED, ApplyOutcome.DUPLICATE
STREAM_A, STREAM_B = "a" * 32, "b" * 32


def incoming(
    seq: int, *, asset: str = "web-01", stream: str = STREAM_A, site: str | None = "main", role: str | None = "web",
    tier: str | None = "normal", at: float | None = None,
) -> IncomingReport:
    return IncomingReport(
        asset=asset, stream=stream, seq=seq, site=site, role=role, tier=tier,
        received_at=1000.0 + seq if at is None else at, body=f'{{"stream":"{stream}","seq":{seq}}}'.encode(),
    )


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "schoolops.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SqlStore]:
    s = SqlStore.open(sqlite_url(db_path))
    yield s
    await s.close()


# --- exactly once ----------------------------------------------------------------------------


async def test_each_seq_is_applied_once_and_gaps_are_counted(store: SqlStore) -> None:
    outcomes = []
    for seq in [1, 2, 2, 3, 1, 5, 4]:
        result = await store.apply_report(incoming(seq))
        outcomes.append((seq, result.outcome, result.missing))
    assert outcomes == [
        (1, APPLIED, 0), (2, APPLIED, 0), (2, DUPLICATE, 0), (3, APPLIED, 0), (1, DUPLICATE, 0), (5, APPLIED, 1),
        (4, DUPLICATE, 0),
    ]
    (stream,) = await store.list_streams("web-01")
    assert (stream.last_seq, stream.applied, stream.duplicates, stream.missing) == (5, 4, 3, 1)
    assert (stream.first_seen, stream.last_seen) == (1001.0, 1005.0)


async def test_the_first_stream_of_an_asset_counts_reports_lost_before_it_arrived(store: SqlStore) -> None:
    # the agent dropped seq 1-2 from its spool before the collector ever heard of it
    assert (await store.apply_report(incoming(3))).missing == 2


async def test_a_new_stream_for_the_same_asset_starts_fresh(store: SqlStore) -> None:
    for seq in (1, 2, 3):
        await store.apply_report(incoming(seq, stream=STREAM_A))
    # the agent's state directory was reset: a new stream whose seq starts again
    first = await store.apply_report(incoming(1, stream=STREAM_B, at=2000.0))
    assert (first.outcome, first.missing) == (APPLIED, 0)
    assert (await store.apply_report(incoming(2, stream=STREAM_B, at=2001.0))).outcome is APPLIED
    # a new stream that first shows up at seq 4 is not charged for the reset
    assert (await store.apply_report(incoming(4, stream="c" * 32, at=3000.0))).missing == 0
    streams = {s.stream: s for s in await store.list_streams("web-01")}
    assert {k: (s.last_seq, s.applied) for k, s in streams.items()} == {
        STREAM_A: (3, 3), STREAM_B: (2, 2), "c" * 32: (4, 1)
    }
    # the old stream keeps its own high-water mark
    assert (await store.apply_report(incoming(3, stream=STREAM_A))).outcome is DUPLICATE


async def test_streams_of_different_assets_are_independent(store: SqlStore) -> None:
    assert (await store.apply_report(incoming(1, asset="web-01"))).outcome is APPLIED
    assert (await store.apply_report(incoming(1, asset="db-01"))).outcome is APPLIED
    assert [s.asset for s in await store.list_streams()] == ["db-01", "web-01"]
    assert [s.asset for s in await store.list_streams("db-01")] == ["db-01"]


async def test_the_high_water_mark_survives_a_restart(db_path: Path) -> None:
    first = SqlStore.open(sqlite_url(db_path))
    for seq in (1, 2, 3):
        await first.apply_report(incoming(seq))
    await first.close()

    restarted = SqlStore.open(sqlite_url(db_path))
    try:
        # the agent replays its spool because the answer to seq 3 was lost in the restart
        assert (await restarted.apply_report(incoming(3))).outcome is DUPLICATE
        assert (await restarted.apply_report(incoming(4))).outcome is APPLIED
        (stream,) = await restarted.list_streams()
        assert (stream.last_seq, stream.applied, stream.duplicates) == (4, 4, 1)
    finally:
        await restarted.close()


async def test_the_latest_report_is_the_newest_applied_one(store: SqlStore) -> None:
    await store.apply_report(incoming(1, asset="web-01"))
    await store.apply_report(incoming(2, asset="web-01"))
    await store.apply_report(incoming(1, asset="db-01"))
    replay = IncomingReport(**{**incoming(1, asset="web-01").__dict__, "body": b'{"replayed":true}', "received_at": 9e9})
    assert (await store.apply_report(replay)).outcome is DUPLICATE
    latest = {r.asset: r for r in await store.latest_reports()}
    assert latest["web-01"].body == incoming(2).body
    assert latest["web-01"].received_at == 1002.0
    assert latest["db-01"].body == incoming(1, asset="db-01").body
    assert isinstance(latest["web-01"].body, bytes)


# --- assets and inventory --------------------------------------------------------------------


async def test_a_reporting_asset_is_registered_with_its_agent_labels(store: SqlStore) -> None:
    await store.apply_report(incoming(1, site="annex", role="file", tier="core"))
    await store.apply_report(incoming(2, site="main", role="web", tier="important"))
    (asset,) = await store.list_assets()
    assert (asset.name, asset.kind, asset.labels_source, asset.parents) == ("web-01", "server", "agent", ())
    assert (asset.site, asset.role, asset.tier) == ("main", "web", "important")  # the agent changed them
    assert (asset.created_at, asset.last_report_at) == (1001.0, 1002.0)


async def test_inventory_labels_are_not_overwritten_by_the_agent(store: SqlStore) -> None:
    await store.apply_report(incoming(1, site="agent-site", role="agent-role", tier="normal"))
    await store.sync_inventory(
        [InventoryAsset(name="web-01", kind="server", site="main", role="web", tier="core", parents=("sw-core",)),
         InventoryAsset(name="sw-core", kind="network", site="main", role="switch", tier="core", parents=())],
        now=1500.0,
    )
    await store.apply_report(incoming(2, site="agent-site", role="agent-role", tier="normal"))
    assets = {a.name: a for a in await store.list_assets()}
    web = assets["web-01"]
    assert (web.site, web.role, web.tier, web.labels_source) == ("main", "web", "core", "inventory")
    assert web.parents == ("sw-core",)
    assert web.last_report_at == 1002.0  # the report still counts
    switch = assets["sw-core"]
    assert (switch.kind, switch.labels_source, switch.last_report_at, switch.created_at) == (
        "network", "inventory", None, 1500.0
    )


async def test_an_asset_removed_from_the_inventory_returns_to_its_agent_labels(store: SqlStore) -> None:
    inventory = [InventoryAsset(name="web-01", kind="server", site="main", role="web", tier="core", parents=())]
    await store.sync_inventory(inventory, now=900.0)
    await store.apply_report(incoming(1, site="annex", role="file", tier="normal"))
    assert (await store.list_assets())[0].site == "main"

    await store.sync_inventory([], now=1500.0)
    assert (await store.list_assets())[0].labels_source == "agent"
    await store.apply_report(incoming(2, site="annex", role="file", tier="normal"))
    (asset,) = await store.list_assets()
    assert (asset.site, asset.role, asset.tier, asset.labels_source) == ("annex", "file", "normal", "agent")


async def test_syncing_the_same_inventory_twice_changes_nothing(store: SqlStore) -> None:
    inventory = [InventoryAsset(name="nas", kind="server", site="main", role="backup", tier="important", parents=())]
    await store.sync_inventory(inventory, now=1.0)
    before = await store.list_assets()
    await store.sync_inventory(inventory, now=2.0)
    assert await store.list_assets() == before


# --- tokens ----------------------------------------------------------------------------------


async def test_tokens_are_created_found_listed_touched_and_revoked(store: SqlStore) -> None:
    web = AgentToken(id="0a1b2c3d4e5f", asset="web-01", secret_hash="h" * 64, created_at=10.0)
    db = AgentToken(id="ffeeddccbbaa", asset="db-01", secret_hash="g" * 64, created_at=20.0)
    web2 = AgentToken(id="111111111111", asset="web-01", secret_hash="f" * 64, created_at=5.0)
    for token in (web, db, web2):
        await store.create_token(token)

    assert await store.find_token("0a1b2c3d4e5f") == web
    assert await store.find_token("000000000000") is None
    assert [t.id for t in await store.list_tokens()] == ["ffeeddccbbaa", "111111111111", "0a1b2c3d4e5f"]

    await store.touch_token(web.id, now=50.0)
    assert (await store.find_token(web.id)).last_used_at == 50.0

    assert await store.revoke_token(web.id, now=60.0) is True
    assert await store.revoke_token(web.id, now=70.0) is False  # already revoked: the first time stands
    assert await store.revoke_token("000000000000", now=70.0) is False
    assert (await store.find_token(web.id)).revoked_at == 60.0
    assert (await store.find_token(db.id)).revoked_at is None


async def test_a_token_id_is_unique(store: SqlStore) -> None:
    token = AgentToken(id="0a1b2c3d4e5f", asset="web-01", secret_hash="h" * 64, created_at=10.0)
    await store.create_token(token)
    with pytest.raises(sa.exc.IntegrityError):
        await store.create_token(token)


# --- migrations ------------------------------------------------------------------------------


def head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from collector.store.sql import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


async def test_opening_an_existing_database_again_migrates_nothing_and_keeps_data(db_path: Path) -> None:
    first = SqlStore.open(sqlite_url(db_path))
    await first.apply_report(incoming(1))
    await first.create_token(AgentToken(id="0a1b2c3d4e5f", asset="web-01", secret_hash="h" * 64, created_at=1.0))
    await first.close()
    for _ in range(2):
        again = SqlStore.open(sqlite_url(db_path))
        try:
            assert [s.last_seq for s in await again.list_streams()] == [1]
            assert [t.id for t in await again.list_tokens()] == ["0a1b2c3d4e5f"]
        finally:
            await again.close()
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(head_revision(),)]
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"assets", "agent_tokens", "report_streams", "asset_latest"} <= tables


async def test_the_database_runs_in_wal_mode(store: SqlStore, db_path: Path) -> None:
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


# --- two collectors on one database ----------------------------------------------------------


@pytest.fixture
async def two_stores(db_path: Path) -> AsyncIterator[tuple[SqlStore, SqlStore]]:
    a, b = SqlStore.open(sqlite_url(db_path)), SqlStore.open(sqlite_url(db_path))
    yield a, b
    await a.close()
    await b.close()


async def test_two_instances_applying_the_same_report_apply_it_once(two_stores: tuple[SqlStore, SqlStore]) -> None:
    a, b = two_stores
    await a.apply_report(incoming(1))
    for seq in range(2, 12):
        results = await asyncio.gather(a.apply_report(incoming(seq)), b.apply_report(incoming(seq)))
        assert sorted(r.outcome.value for r in results) == ["applied", "duplicate"], seq
    (stream,) = await a.list_streams()
    assert (stream.last_seq, stream.applied) == (11, 11)


class WriteLock:
    """Hold SQLite's write lock from a third connection while the stores read, then let them race to write.

    ``ready`` fires for each store engine when it is about to write (its reads are done), so releasing the lock
    after both have fired makes the race deterministic: each has seen the same state before either commits.
    """

    def __init__(self, db_path: Path, engines: list[sa.Engine]) -> None:
        self.conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
        self.conn.execute("BEGIN IMMEDIATE")
        self.ready = [threading.Event() for _ in engines]
        for engine, event in zip(engines, self.ready, strict=True):
            sa.event.listen(engine, "before_cursor_execute", self._signal_on_write(event))

    @staticmethod
    def _signal_on_write(event: threading.Event) -> Callable[..., None]:
        def hook(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if statement.lstrip().upper().startswith(("INSERT", "UPDATE")):
                event.set()

        return hook

    async def release_when_all_ready(self) -> None:
        for event in self.ready:
            assert await asyncio.to_thread(event.wait, 5), "a store never reached its first write"
        self.conn.execute("COMMIT")
        self.conn.close()


async def test_two_instances_racing_on_the_next_report_apply_it_once(
    two_stores: tuple[SqlStore, SqlStore], db_path: Path
) -> None:
    a, b = two_stores
    await a.apply_report(incoming(1))
    lock = WriteLock(db_path, [a.engine, b.engine])
    results = await asyncio.gather(a.apply_report(incoming(2)), b.apply_report(incoming(2)), lock.release_when_all_ready())
    assert sorted(r.outcome.value for r in results[:2]) == ["applied", "duplicate"]
    (stream,) = await a.list_streams()
    assert (stream.last_seq, stream.applied) == (2, 2)


async def test_two_instances_racing_on_a_new_assets_first_report_apply_it_once(
    two_stores: tuple[SqlStore, SqlStore], db_path: Path
) -> None:
    a, b = two_stores
    lock = WriteLock(db_path, [a.engine, b.engine])
    results = await asyncio.gather(
        a.apply_report(incoming(1)), b.apply_report(incoming(1)), lock.release_when_all_ready(),
        return_exceptions=True,
    )
    outcomes = sorted(r.outcome.value if hasattr(r, "outcome") else repr(r) for r in results[:2])
    assert outcomes == ["applied", "duplicate"]


async def test_a_duplicate_lost_in_the_race_is_counted(two_stores: tuple[SqlStore, SqlStore], db_path: Path) -> None:
    a, b = two_stores
    await a.apply_report(incoming(1))
    lock = WriteLock(db_path, [a.engine, b.engine])
    await asyncio.gather(a.apply_report(incoming(2)), b.apply_report(incoming(2)), lock.release_when_all_ready())
    (stream,) = await a.list_streams()
    assert stream.duplicates == 1


async def test_the_migrations_make_every_table_and_column_the_queries_use(store: SqlStore, db_path: Path) -> None:
    """tables.py (what the queries use) and the migrations (what the database has) stay in step; tables.py
    may leave out indexes and foreign keys, which only the migrations need to name."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from collector.store.tables import metadata

    engine = sa.create_engine(sqlite_url(db_path))
    try:
        with engine.connect() as conn:
            drift = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    flat = [d for group in drift for d in (group if isinstance(group, list) else [group])]
    assert [d for d in flat if d[0] not in ("remove_index", "remove_fk")] == []


GROUP = [  # one group: repeats, gaps, replays, two assets, a second stream of one of them
    incoming(3), incoming(4, asset="db-01"), incoming(4), incoming(4), incoming(2), incoming(7), incoming(6),
    incoming(5, asset="db-01", site="annex"), incoming(1, stream=STREAM_B, at=2000.0), incoming(8),
    incoming(2, stream=STREAM_B, at=2001.0), incoming(9, asset="db-01"),
]


async def _state(store: SqlStore) -> tuple[Any, ...]:
    return (await store.list_streams(), await store.latest_reports(), await store.list_assets())


@pytest.mark.parametrize("new_stream", [False, True], ids=["known streams", "with a new stream"])
async def test_a_group_applied_together_gives_what_one_after_the_other_gives(tmp_path: Path, new_stream: bool) -> None:
    together, alone = SqlStore.open(sqlite_url(tmp_path / "t.db")), SqlStore.open(sqlite_url(tmp_path / "a.db"))
    try:
        for store in (together, alone):  # the streams exist before the group unless the group starts one
            await store.apply_report(incoming(1))
            await store.apply_report(incoming(1, asset="db-01"))
        group = GROUP if new_stream else [r for r in GROUP if r.stream == STREAM_A]
        grouped = await asyncio.gather(*(together.apply_report(r) for r in group))  # one transaction
        sequential = [await alone.apply_report(r) for r in group]
        assert grouped == sequential
        assert await _state(together) == await _state(alone)
    finally:
        await together.close()
        await alone.close()


async def test_a_group_moved_by_another_writer_meanwhile_is_applied_one_by_one(
    two_stores: tuple[SqlStore, SqlStore], db_path: Path
) -> None:
    a, b = two_stores
    await a.apply_report(incoming(1))
    lock = WriteLock(db_path, [a.engine, b.engine])
    a2, a3, b3, _ = await asyncio.gather(a.apply_report(incoming(2)), a.apply_report(incoming(3)),
                                         b.apply_report(incoming(3)), lock.release_when_all_ready())
    assert [a3.outcome, b3.outcome].count(APPLIED) == 1  # whoever won, seq 3 was applied once
    outcomes = [a2.outcome, a3.outcome, b3.outcome]
    (stream,) = await a.list_streams()
    assert (stream.last_seq, stream.applied, stream.duplicates) == (3, 1 + outcomes.count(APPLIED),
                                                                   outcomes.count(DUPLICATE))


async def test_a_store_whose_view_of_a_stream_went_stale_still_applies_each_report_once(
    two_stores: tuple[SqlStore, SqlStore]
) -> None:
    a, b = two_stores
    for seq in (1, 2, 3):
        await a.apply_report(incoming(seq))
    for seq in (4, 5):  # a does not see these
        await b.apply_report(incoming(seq))
    assert [(r.outcome, r.missing) for r in await asyncio.gather(*(a.apply_report(incoming(s)) for s in (3, 5, 7)))] == [
        (DUPLICATE, 0), (DUPLICATE, 0), (APPLIED, 1)]
    (stream,) = await a.list_streams()
    assert (stream.last_seq, stream.applied, stream.duplicates, stream.missing) == (7, 6, 2, 1)
