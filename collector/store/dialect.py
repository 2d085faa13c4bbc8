"""What the SQL back ends do differently, behind one function each."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.compiler import SQLCompiler

from collector.store import StoreError


def insert_ignore(conn: Connection, table: sa.Table, values: dict[str, Any]) -> bool:
    """INSERT unless the primary key exists (SQLite and PostgreSQL alike); True if this call inserted."""
    dialect = conn.dialect.name
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
    else:
        raise StoreError(f"unsupported database: {dialect}")
    return conn.execute(insert(table).values(**values).on_conflict_do_nothing()).rowcount == 1


class Prepared:
    """A statement compiled once per back end and executed with rows of plain values (str, int, float,
    bytes), once per row, in one executemany.

    For the report path, which runs a few statements per report: SQLAlchemy's per-row processing of
    parameters costs more there than the SQL itself.
    """

    def __init__(self, statement: sa.ClauseElement) -> None:
        self.statement = statement
        self._compiled: dict[str, tuple[str, Callable[[dict[str, Any]], Any], dict[str, Any]]] = {}

    def _for(self, dialect: sa.Dialect) -> tuple[str, Callable[[dict[str, Any]], Any], dict[str, Any]]:
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = self.statement.compile(dialect=dialect)
            assert isinstance(compiled, SQLCompiler)
            fixed = {name: bind.value for name, bind in compiled.binds.items() if not bind.required}  # literals
            order = compiled.positiontup
            if order:  # a positional paramstyle (SQLite's): the row's values in the statement's order
                pick = operator.itemgetter(*order)
                values: Callable[[dict[str, Any]], Any] = (lambda row: (row[order[0]],)) if len(order) == 1 else pick
            else:
                values = dict
            found = self._compiled[dialect.name] = (compiled.string, values, fixed)
        return found

    def matching_all(self, conn: Connection, rows: list[dict[str, Any]]) -> bool:
        """Execute once per row of parameters; True if every execution matched exactly one row (each
        row's WHERE names a primary key). Where the driver cannot count the rows an executemany
        matched, one execution per row."""
        if not rows:
            return True
        sql, values, fixed = self._for(conn.dialect)
        params = [values({**fixed, **row}) for row in rows] if fixed else [values(row) for row in rows]
        if conn.dialect.supports_sane_multi_rowcount:
            return bool(conn.exec_driver_sql(sql, params).rowcount == len(rows))
        return all(conn.exec_driver_sql(sql, p).rowcount == 1 for p in params)
