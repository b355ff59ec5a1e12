"""A generation of the read model in one SQLite file (WAL): one writer, the status service;
many readers."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from pizzashop.readmodel.database import INDEXES, SqlDatabase

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    order_id    TEXT PRIMARY KEY,
    customer_id TEXT,
    order_json  TEXT,
    placed_at   INTEGER,
    status      INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    partition_number INTEGER
);
CREATE TABLE IF NOT EXISTS status_history (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id  TEXT NOT NULL,
    status    INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    UNIQUE (order_id, status)
);
CREATE TABLE IF NOT EXISTS unplaced_events (
    topic            TEXT NOT NULL,
    partition_number INTEGER NOT NULL,
    offset_number    INTEGER NOT NULL,
    order_id         TEXT NOT NULL,
    status           INTEGER NOT NULL,
    timestamp        INTEGER NOT NULL,
    seen_at          INTEGER NOT NULL,
    PRIMARY KEY (topic, partition_number, offset_number)
);
CREATE TABLE IF NOT EXISTS applied_offsets (
    topic            TEXT NOT NULL,
    partition_number INTEGER NOT NULL,
    next_offset      INTEGER NOT NULL,
    PRIMARY KEY (topic, partition_number)
);
CREATE TABLE IF NOT EXISTS web_sessions (
    session_id  TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    ended_at    INTEGER
);
CREATE TABLE IF NOT EXISTS stock (
    ingredient  TEXT PRIMARY KEY,
    left_count  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sold_out (
    order_id    TEXT PRIMARY KEY,
    ingredient  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
"""

BUSY_TIMEOUT_SECONDS = 30


class SqliteDatabase(SqlDatabase):
    placeholder = "?"

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: transactions are begun explicitly, so a reader's two queries
        # see one snapshot and the writer takes the write lock before it reads.
        connection = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_SECONDS, check_same_thread=False, isolation_level=None
        )
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")  # WAL keeps it consistent; fewer fsyncs
        connection.executescript(f"BEGIN IMMEDIATE; {SCHEMA} {INDEXES} COMMIT;")
        _add_partition_column(connection)
        super().__init__(connection)

    def number_history_after(self, seq: int) -> None:
        with self.transaction(writing=True) as cursor:
            cursor.execute("SELECT COALESCE(MAX(seq), 0) FROM status_history")
            floor = seq + cursor.fetchone()[0]
            cursor.execute("DELETE FROM sqlite_sequence WHERE name = 'status_history'")
            cursor.execute(
                "INSERT INTO sqlite_sequence (name, seq) VALUES ('status_history', ?)", (floor,)
            )

    def _begin(self, cursor: Any, writing: bool) -> None:
        cursor.execute("BEGIN IMMEDIATE" if writing else "BEGIN")


def _add_partition_column(connection: sqlite3.Connection) -> None:
    """Read models made before orders kept their partition get the column (empty: unknown)."""
    connection.execute("BEGIN IMMEDIATE")  # two status services may start at once
    columns = {row[1] for row in connection.execute("PRAGMA table_info(orders)")}
    if "partition_number" not in columns:
        connection.execute("ALTER TABLE orders ADD COLUMN partition_number INTEGER")
    connection.execute("COMMIT")
