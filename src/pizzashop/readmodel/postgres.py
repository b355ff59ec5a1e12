"""A generation of the read model in PostgreSQL, for shops that run one database server for
everything.

The same tables and the same SQL as SQLite; only the types, the placeholders and the write
lock differ.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from pizzashop.kafka.reaching import Unreachable
from pizzashop.readmodel.database import INDEXES, SqlDatabase

CONNECT_TIMEOUT = 3  # seconds; libpq's least is 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    order_id    TEXT PRIMARY KEY,
    customer_id TEXT,
    order_json  TEXT,
    placed_at   BIGINT,
    status      INTEGER NOT NULL,
    updated_at  BIGINT NOT NULL,
    partition_number INTEGER
);
-- Read models made before orders kept their partition get the column (empty: unknown).
ALTER TABLE orders ADD COLUMN IF NOT EXISTS partition_number INTEGER;
CREATE TABLE IF NOT EXISTS status_history (
    seq       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id  TEXT NOT NULL,
    status    INTEGER NOT NULL,
    timestamp BIGINT NOT NULL,
    UNIQUE (order_id, status)
);
CREATE TABLE IF NOT EXISTS unplaced_events (
    topic            TEXT NOT NULL,
    partition_number INTEGER NOT NULL,
    offset_number    BIGINT NOT NULL,
    order_id         TEXT NOT NULL,
    status           INTEGER NOT NULL,
    timestamp        BIGINT NOT NULL,
    seen_at          BIGINT NOT NULL,
    PRIMARY KEY (topic, partition_number, offset_number)
);
CREATE TABLE IF NOT EXISTS applied_offsets (
    topic            TEXT NOT NULL,
    partition_number INTEGER NOT NULL,
    next_offset      BIGINT NOT NULL,
    PRIMARY KEY (topic, partition_number)
);
CREATE TABLE IF NOT EXISTS web_sessions (
    session_id  TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    ended_at    BIGINT
);
CREATE TABLE IF NOT EXISTS stock (
    ingredient  TEXT PRIMARY KEY,
    left_count  INTEGER NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS sold_out (
    order_id    TEXT PRIMARY KEY,
    ingredient  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
"""

# One advisory lock for all writers: like SQLite's single writer, it keeps two status
# services on one database from interleaving their read-modify-write of an order.
WRITE_LOCK = 0x70697A7A61  # "pizza"


class PostgresDatabase(SqlDatabase):
    placeholder = "%s"

    def __init__(self, url: str, schema: str | None = None) -> None:
        """`schema`: the one holding the tables (a generation), instead of the URL's own."""
        connection = connect(url)
        with connection.cursor() as cursor:
            if schema is not None:
                cursor.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
            self._take_write_lock(cursor)  # CREATE ... IF NOT EXISTS races with itself otherwise
            cursor.execute(SCHEMA + INDEXES)
        connection.commit()
        super().__init__(connection)

    def number_history_after(self, seq: int) -> None:
        with self.transaction(writing=True) as cursor:
            cursor.execute("SELECT COALESCE(MAX(seq), 0) FROM status_history")
            floor = seq + cursor.fetchone()[0]
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence('status_history', 'seq'), %s)",
                (max(floor, 1),),
            )

    def _begin(self, cursor: Any, writing: bool) -> None:
        if writing:
            self._take_write_lock(cursor)

    @staticmethod
    def _take_write_lock(cursor: Any) -> None:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))


def connect(url: str) -> psycopg.Connection[Any]:
    """A connection, or Unreachable naming the server and its first word on why not."""
    try:
        return psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT)
    except psycopg.OperationalError as e:
        reason = (str(e).splitlines() or ["no answer"])[0]
        advice = f"{reason}. Is it running, and is PIZZASHOP_DATABASE_URL right?"
        raise Unreachable("the PostgreSQL database", server_of(url), CONNECT_TIMEOUT, advice) from e


def server_of(url: str) -> str:
    """host:port of a PostgreSQL URL (libpq's defaults where it names none)."""
    parts = conninfo_to_dict(url)
    return f"{parts.get('host') or 'localhost'}:{parts.get('port') or 5432}"
