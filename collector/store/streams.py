"""Applying agents' reports exactly once: each stream's high-water mark, the asset, the latest report.

A report applies when its ``seq`` is above its stream's ``last_seq``; every write that moves a
stream is compare-and-set, so two collectors racing on the same report apply it once. Reports
come one at a time (:func:`apply_report`) or as a group that arrived together
(:func:`apply_reports`), which reads every stream of the group in one query and writes each stream,
asset and latest report once, with the same results as applying the reports one after the other.

The statements are built once, with bind parameters, so a report costs SQL rather than statement
construction. (Bind names differ from column names: SQLAlchemy reserves those for the SET clause.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from collector.store import ApplyOutcome, ApplyResult, IncomingReport
from collector.store.dialect import Prepared, insert_ignore
from collector.store.tables import asset_latest, assets, report_streams

_STREAM = (report_streams.c.asset == sa.bindparam("b_asset")) & (report_streams.c.stream == sa.bindparam("b_stream"))
_STREAM_LAST_SEQ = sa.select(report_streams.c.last_seq).where(_STREAM)
_STREAMS_LAST_SEQ = sa.select(report_streams.c.asset, report_streams.c.stream, report_streams.c.last_seq).where(
    sa.tuple_(report_streams.c.asset, report_streams.c.stream).in_(sa.bindparam("b_keys", expanding=True))
)
_STREAM_ADVANCE = (
    report_streams.update()
    .where(_STREAM & (report_streams.c.last_seq == sa.bindparam("b_expected")))
    .values(last_seq=sa.bindparam("b_seq"), applied=report_streams.c.applied + sa.bindparam("b_applied"),
            missing=report_streams.c.missing + sa.bindparam("b_missing"), last_seen=sa.bindparam("b_at"))
)
_STREAM_DUPLICATES = report_streams.update().where(_STREAM).values(
    duplicates=report_streams.c.duplicates + sa.bindparam("b_duplicates")
)
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

# the group path's writes, one row of values per stream or asset
_ADVANCE_EACH, _DUPLICATES_EACH = Prepared(_STREAM_ADVANCE), Prepared(_STREAM_DUPLICATES)
_ASSET_EACH, _LATEST_EACH = Prepared(_ASSET_REPORTED), Prepared(_LATEST_REPLACE)


class GroupConflict(Exception):
    """The group cannot be applied as read (a new stream or asset, or another writer moved a stream);
    raised before the transaction commits, so the caller rolls back and applies the reports one by one."""


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
        if insert_ignore(conn, report_streams, {
            "asset": report.asset, "stream": report.stream, "last_seq": report.seq, "applied": 1, "duplicates": 0,
            "missing": missing, "first_seen": report.received_at, "last_seen": report.received_at,
        }):
            _register_asset(conn, report)
            _upsert_latest(conn, report)
            return ApplyResult(ApplyOutcome.APPLIED, missing=missing)
        row = conn.execute(_STREAM_LAST_SEQ, key).one()  # another writer created the stream first
    if report.seq > row.last_seq:
        missing = report.seq - row.last_seq - 1
        moved = conn.execute(_STREAM_ADVANCE, {**key, "b_expected": row.last_seq, "b_seq": report.seq, "b_applied": 1,
                                               "b_missing": missing, "b_at": report.received_at}).rowcount
        if moved == 1:
            _register_asset(conn, report)
            _upsert_latest(conn, report)
            return ApplyResult(ApplyOutcome.APPLIED, missing=missing)
    conn.execute(_STREAM_DUPLICATES, {**key, "b_duplicates": 1})
    return ApplyResult(ApplyOutcome.DUPLICATE)


def apply_reports(
    conn: Connection, reports: Sequence[IncomingReport], known: Mapping[str, tuple[str, int]] | None = None
) -> list[ApplyResult]:
    """Apply ``reports`` in order, with the results :func:`apply_report` would give one after the other.

    ``known`` (asset → (stream, last_seq) as this process last committed them) spares reading those
    streams again: a value another writer made stale fails the compare-and-set, and a report at or
    below it is a duplicate still, as a stream's ``last_seq`` only grows.

    Raises :class:`GroupConflict` when the group holds a stream or an asset the store does not have
    (yet), or when another writer moved one of its streams since it was read: roll back, and apply
    the reports one by one.
    """
    keys = list(dict.fromkeys((r.asset, r.stream) for r in reports))
    read: dict[tuple[str, str], int] = {}
    for asset, stream in keys:
        cached = known.get(asset) if known is not None else None
        if cached is not None and cached[0] == stream:
            read[(asset, stream)] = cached[1]
    unread = [key for key in keys if key not in read]
    if unread:
        rows = conn.execute(_STREAMS_LAST_SEQ, {"b_keys": unread})
        read.update(((row.asset, row.stream), row.last_seq) for row in rows)
    if len(read) < len(keys):
        raise GroupConflict("a new stream")
    last = dict(read)
    advances: dict[tuple[str, str], dict[str, Any]] = {}
    duplicates: dict[tuple[str, str], int] = {}
    newest: dict[str, IncomingReport] = {}  # asset → its last applied report of the group
    results = []
    for report in reports:
        key = (report.asset, report.stream)
        if report.seq <= last[key]:
            duplicates[key] = duplicates.get(key, 0) + 1
            results.append(ApplyResult(ApplyOutcome.DUPLICATE))
            continue
        missing = report.seq - last[key] - 1
        last[key] = report.seq
        advance = advances.setdefault(key, {"b_asset": report.asset, "b_stream": report.stream,
                                            "b_expected": read[key], "b_applied": 0, "b_missing": 0})
        advance.update(b_seq=report.seq, b_at=report.received_at, b_applied=advance["b_applied"] + 1,
                       b_missing=advance["b_missing"] + missing)
        newest[report.asset] = report
        results.append(ApplyResult(ApplyOutcome.APPLIED, missing=missing))
    if not _ADVANCE_EACH.matching_all(conn, list(advances.values())):
        raise GroupConflict("another writer moved a stream")
    if not _DUPLICATES_EACH.matching_all(conn, [{"b_asset": asset, "b_stream": stream, "b_duplicates": n}
                                                for (asset, stream), n in duplicates.items()]):
        raise GroupConflict("a stream that is gone")
    if not _ASSET_EACH.matching_all(conn, [_asset_values(r) for r in newest.values()]):
        raise GroupConflict("a new asset")
    if not _LATEST_EACH.matching_all(conn, [_latest_values(r) for r in newest.values()]):
        raise GroupConflict("an asset without a latest report")
    return results


def _asset_values(report: IncomingReport) -> dict[str, Any]:
    return {"b_asset": report.asset, "b_at": report.received_at, "b_site": report.site, "b_role": report.role,
            "b_tier": report.tier}


def _latest_values(report: IncomingReport) -> dict[str, Any]:
    return {"b_asset": report.asset, "b_stream": report.stream, "b_seq": report.seq, "b_at": report.received_at,
            "b_body": report.body}


def _register_asset(conn: Connection, report: IncomingReport) -> None:
    if conn.execute(_ASSET_REPORTED, _asset_values(report)).rowcount:
        return
    if not insert_ignore(conn, assets, {
        "name": report.asset, "kind": "server", "site": report.site, "role": report.role, "tier": report.tier,
        "labels_source": "agent", "parents": "[]", "created_at": report.received_at,
        "updated_at": report.received_at, "last_report_at": report.received_at,
    }):  # another writer registered it meanwhile
        _register_asset(conn, report)


def _upsert_latest(conn: Connection, report: IncomingReport) -> None:
    values = _latest_values(report)
    if conn.execute(_LATEST_REPLACE, values).rowcount:
        return
    if not insert_ignore(conn, asset_latest, {"asset": report.asset, "stream": report.stream, "seq": report.seq,
                                              "received_at": report.received_at, "body": report.body}):
        conn.execute(_LATEST_REPLACE, values)
