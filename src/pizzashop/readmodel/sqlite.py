"""The read model in one SQLite file (WAL): one writer, the status service; many readers."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from pizzashop.readmodel.sql import SqlReadModel

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    order_id    TEXT PRIMARY KEY,
    customer_id TEXT,
    order_json  TEXT,
    placed_at   INTEGER,
    status      INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_by_customer ON orders (customer_id, placed_at DESC);
CREATE INDEX IF NOT EXISTS orders_by_progress ON orders (status, updated_at);
CREATE TABLE IF NOT EXISTS status_history (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id  TEXT NOT NULL,
    status    INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    UNIQUE (order_id, status)
);
CREATE TABLE IF NOT EXISTS applied_offsets (
    topic            TEXT NOT NULL,
    partition_number INTEGER NOT NULL,
    next_offset      INTEGER NOT NULL,
    PRIMARY KEY (topic, partition_number)
);
"""


class SqliteReadModel(SqlReadModel):
    placeholder = "?"

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, timeout=30, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")  # WAL keeps it consistent; fewer fsyncs
        connection.executescript(SCHEMA)
        connection.commit()
        super().__init__(connection)
