"""Where the read model's tables are: one generation's SQL database, SQLite or PostgreSQL.

Every part of the read model (the writer, the views, the watchdog's and the pipeline page's
queries, the web's sign-ins) asks a `Database` for transactions and nothing else, so the one
it is given may be a fixed generation (a rebuild's) or the live one, which follows a switch to
a rebuilt generation beneath them all (generations.py).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from pizzashop.contract import Status
from pizzashop.readmodel import SCHEMA_VERSION, check_schema_version

ORDER_COLUMNS = "order_id, customer_id, order_json, placed_at, status, updated_at, partition_number"
# What a view reads of an order: its row and the ingredient it was sold out of. That one has a
# table of its own: the pantry's answer may be read before the order it answers.
VIEW_COLUMNS = (
    f"{ORDER_COLUMNS}, (SELECT ingredient FROM sold_out WHERE sold_out.order_id = orders.order_id)"
)
# The schema version of a database made before versions were kept: the shape it has.
UNVERSIONED = 1
NOT_MOVING = ",".join(str(int(s)) for s in Status if s.is_final or s is Status.STUCK)
# Spelled into the SQL, not bound: only then can the databases use the partial indexes.
STUCK = int(Status.STUCK)
CHUNK = 500  # ids per IN (...) list, well under every database's limit on parameters

INDEXES = f"""
CREATE INDEX IF NOT EXISTS orders_by_customer ON orders (customer_id, placed_at DESC);
CREATE INDEX IF NOT EXISTS orders_by_update ON orders (updated_at);
DROP INDEX IF EXISTS orders_in_progress;
CREATE INDEX IF NOT EXISTS orders_still_moving ON orders (updated_at) WHERE status NOT IN ({NOT_MOVING});
DROP INDEX IF EXISTS orders_by_progress;
CREATE INDEX IF NOT EXISTS unplaced_by_order ON unplaced_events (order_id);
CREATE INDEX IF NOT EXISTS orders_stuck ON orders (updated_at) WHERE status = {STUCK};
CREATE INDEX IF NOT EXISTS history_by_time ON status_history (timestamp);
CREATE INDEX IF NOT EXISTS web_sessions_by_start ON web_sessions (started_at);
"""


class Database(Protocol):
    @property
    def placeholder(self) -> str:
        """How a bound parameter is spelled in this database's SQL."""

    def transaction(self, writing: bool) -> AbstractContextManager[Any]:
        """A cursor in one transaction, committed at the end (rolled back on an error).

        A writing one holds the database's write lock from its start, so two status services
        on one database never interleave a read-modify-write."""


class SqlDatabase:
    """One generation's tables over one DB-API connection. A subclass connects, makes the
    schema, and says how a writing transaction takes the write lock."""

    placeholder = "?"

    def __init__(self, connection: Any) -> None:
        self._db = connection
        self._lock = threading.Lock()  # one connection, shared by the threads of a web server
        self._stamp_schema_version()

    def _stamp_schema_version(self) -> None:
        """A new database takes the code's version. One made before versions were kept, and
        holding anything, has the shape of version 1 (the partition column was its last
        change) and takes that one: it is then refused, like any database of an older shape."""
        with self.transaction(writing=True) as cursor:
            cursor.execute("SELECT version FROM schema_version")
            rows = cursor.fetchall()
            found = int(rows[0][0]) if rows else _version_of_unversioned(cursor)
            if not rows:
                p = self.placeholder
                cursor.execute(f"INSERT INTO schema_version (version) VALUES ({p})", (found,))
        check_schema_version(found)

    @contextmanager
    def transaction(self, writing: bool) -> Iterator[Any]:
        with self._lock:
            cursor = self._db.cursor()
            try:
                self._begin(cursor, writing)
                yield cursor
                self._db.commit()
            except BaseException:
                self._db.rollback()
                raise
            finally:
                cursor.close()

    def _begin(self, cursor: Any, writing: bool) -> None:
        """Start a transaction; a writing one takes the write lock (see `Database`)."""

    def number_history_after(self, seq: int) -> None:
        """New status entries get a seq above `seq` (another generation's last): a live stream
        that resumes after a seq it saw there misses nothing written here after the switch."""
        raise NotImplementedError

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _version_of_unversioned(cursor: Any) -> int:
    """Version 1 for a database without a version that holds anything; else a new one's."""
    for table in ("orders", "applied_offsets", "web_sessions"):
        cursor.execute(f"SELECT 1 FROM {table} LIMIT 1")
        if cursor.fetchall():
            return UNVERSIONED
    return SCHEMA_VERSION


def query(database: Database, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """The rows of one statement, read in a transaction of their own."""
    with database.transaction(writing=False) as cursor:
        cursor.execute(sql, parameters)
        return [tuple(row) for row in cursor.fetchall()]


def marks(database: Database, values: Sequence[Any]) -> str:
    """One placeholder per value, for an `IN (...)` list."""
    return ",".join([database.placeholder] * len(values))


def chunks(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def stored_offsets(database: Database) -> dict[tuple[str, int], int]:
    """The offsets the writer stored with the view: where the status service resumes."""
    with database.transaction(writing=False) as cursor:
        return stored_offsets_in(cursor)


def stored_offsets_in(cursor: Any) -> dict[tuple[str, int], int]:
    """The same, read in a transaction already open (a batch's, before it writes)."""
    cursor.execute("SELECT topic, partition_number, next_offset FROM applied_offsets")
    return {(topic, partition): offset for topic, partition, offset in cursor.fetchall()}
