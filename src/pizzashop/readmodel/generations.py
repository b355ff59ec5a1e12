"""Generations of the read model: a new one is built from the log beside the live one, then a
pointer is switched in one atomic step, and every process following it opens the new one.

SQLite: generation 1 is the configured file, generation N a file beside it
(`readmodel.gN.sqlite3`); the pointer is a small file (`readmodel.sqlite3.generation`),
replaced by an atomic rename. PostgreSQL: generation 1 is the URL's own schema, generation N
the schema `<that schema>_gN`; the pointer is the one row of `readmodel_generation` in the
URL's own schema, updated in one transaction.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol

from pizzashop.contract import Status
from pizzashop.readmodel import (
    Applied,
    Offsets,
    OrderView,
    ReadModelUnusable,
    Source,
    StatusEntry,
    UnplacedEvent,
)
from pizzashop.readmodel.sql import SqlReadModel

FIRST = 1
ANOTHER_REBUILD = "another `pizzashop readmodel rebuild` is running on this read model"
REBUILD_LOCK = 0x72656275  # "rebu"; with the schema's hash, one lock per read model
FOLLOW_SECONDS = 1.0  # how often a web process asks which generation is live


class Generations(Protocol):
    def live(self) -> int:
        """The generation every process should read and write."""

    def open(self, generation: int) -> SqlReadModel: ...

    def fresh(self, generation: int) -> SqlReadModel:
        """An empty read model for `generation`, whatever an earlier attempt left there."""

    def drop(self, generation: int) -> None: ...

    def switch_to(self, generation: int) -> None:
        """Make `generation` the live one, in one atomic step."""

    def describe(self, generation: int) -> str:
        """Where the generation is kept, for people."""

    def scratch(self) -> AbstractContextManager[SqlReadModel]:
        """An empty read model that no process follows, gone after use (to check the live one)."""

    def rebuilding(self) -> AbstractContextManager[None]:
        """Held while a new generation is built: ReadModelUnusable if another rebuild holds it
        (both would build the same generation)."""

    def close(self) -> None: ...


def generations_of(url: str) -> Generations:
    if url.startswith("sqlite:///"):
        return SqliteGenerations(Path(url.removeprefix("sqlite:///")))
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresGenerations(url)
    raise ValueError(f"unsupported read model URL {url!r} (sqlite:///… or postgresql://…)")


class SqliteGenerations:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.pointer = path.with_name(path.name + ".generation")

    def live(self) -> int:
        try:
            return int(self.pointer.read_text().strip())
        except FileNotFoundError:
            return FIRST

    def path_of(self, generation: int) -> Path:
        if generation == FIRST:
            return self.path
        return self.path.with_name(f"{self.path.stem}.g{generation}{self.path.suffix}")

    def exists(self, generation: int) -> bool:
        return self.path_of(generation).exists()

    def open(self, generation: int) -> SqlReadModel:
        from pizzashop.readmodel.sqlite import SqliteReadModel

        return SqliteReadModel(self.path_of(generation))

    def fresh(self, generation: int) -> SqlReadModel:
        self.drop(generation)
        return self.open(generation)

    def drop(self, generation: int) -> None:
        path = self.path_of(generation)
        for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            leftover.unlink(missing_ok=True)

    def switch_to(self, generation: int) -> None:
        written = self.pointer.with_name(self.pointer.name + ".new")
        written.write_text(f"{generation}\n")
        os.replace(written, self.pointer)  # atomic: a reader sees the old or the new, whole

    def describe(self, generation: int) -> str:
        return str(self.path_of(generation))

    @contextmanager
    def scratch(self) -> Iterator[SqlReadModel]:
        from pizzashop.readmodel.sqlite import SqliteReadModel

        with tempfile.TemporaryDirectory(prefix="pizzashop-verify-") as folder:
            model = SqliteReadModel(Path(folder) / self.path.name)
            try:
                yield model
            finally:
                model.close()

    @contextmanager
    def rebuilding(self) -> Iterator[None]:
        lock_path = self.path.with_name(self.path.name + ".rebuilding")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with lock_path.open("w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ReadModelUnusable(ANOTHER_REBUILD) from None
            yield  # the lock goes with the file's closing, even if the process dies

    def close(self) -> None:
        """Nothing held open: the pointer is read afresh each time."""


class PostgresGenerations:
    def __init__(self, url: str) -> None:
        from pizzashop.readmodel.postgres import connect

        self.url = url
        self._db = connect(url)
        self._db.autocommit = True
        self._lock = threading.Lock()
        row = self._db.execute("SELECT current_schema()").fetchone()
        assert row is not None and row[0], "the URL's search_path names no existing schema"
        self.home: str = row[0]
        self._run(
            "CREATE TABLE IF NOT EXISTS {}.readmodel_generation (generation INTEGER NOT NULL)"
        )

    def _run(self, statement: str, schema: str | None = None) -> list[tuple[Any, ...]]:
        """One statement on `schema` (the URL's own by default), named safely in it as {}."""
        with self._lock:
            cursor = self._db.execute(self._sql(statement, schema or self.home))
            return cursor.fetchall() if cursor.description else []

    def live(self) -> int:
        rows = self._run("SELECT generation FROM {}.readmodel_generation")
        return int(rows[0][0]) if rows else FIRST

    def schema_of(self, generation: int) -> str:
        return self.home if generation == FIRST else f"{self.home}_g{generation}"

    def open(self, generation: int) -> SqlReadModel:
        from pizzashop.readmodel.postgres import PostgresReadModel

        return PostgresReadModel(self.url, schema=self.schema_of(generation))

    def fresh(self, generation: int) -> SqlReadModel:
        self.drop(generation)
        self._run("CREATE SCHEMA {}", self.schema_of(generation))
        return self.open(generation)

    def drop(self, generation: int) -> None:
        if generation == FIRST:
            raise ValueError("generation 1 lives in the URL's own schema, beside the pointer")
        self._run("DROP SCHEMA IF EXISTS {} CASCADE", self.schema_of(generation))

    def switch_to(self, generation: int) -> None:
        with self._lock, self._db.transaction():
            # Two switches at once: one waits for the other, then overwrites it.
            self._db.execute(self._sql("LOCK TABLE {}.readmodel_generation", self.home))
            self._db.execute(self._sql("DELETE FROM {}.readmodel_generation", self.home))
            self._db.execute(
                self._sql("INSERT INTO {}.readmodel_generation VALUES (%s)", self.home),
                (generation,),
            )

    @staticmethod
    def _sql(statement: str, schema: str) -> Any:
        from psycopg import sql

        return sql.SQL(statement).format(sql.Identifier(schema))

    def describe(self, generation: int) -> str:
        return f"schema {self.schema_of(generation)}"

    @contextmanager
    def scratch(self) -> Iterator[SqlReadModel]:
        from pizzashop.readmodel.postgres import PostgresReadModel

        schema = f"{self.home}_verify_{secrets.token_hex(4)}"
        self._run("CREATE SCHEMA {}", schema)
        try:
            model = PostgresReadModel(self.url, schema=schema)
            try:
                yield model
            finally:
                model.close()
        finally:
            self._run("DROP SCHEMA {} CASCADE", schema)

    @contextmanager
    def rebuilding(self) -> Iterator[None]:
        # A session lock: it goes with the connection, even if the process dies.
        if not self._advisory("pg_try_advisory_lock"):
            raise ReadModelUnusable(ANOTHER_REBUILD)
        try:
            yield
        finally:
            self._advisory("pg_advisory_unlock")

    def _advisory(self, function: str) -> bool:
        with self._lock:
            row = self._db.execute(
                f"SELECT {function}(%s, hashtext(%s))", (REBUILD_LOCK, self.home)
            ).fetchone()
        return bool(row and row[0])

    def close(self) -> None:
        self._db.close()


class LiveReadModel:
    """The live generation of a read model, following the pointer when it is switched.

    `follow_every` seconds (a web process): reads move to a new generation on their own.
    None (the status service): only `switched()` moves it, so its loop can first drop what it
    read for the old generation and resume from the new one's offsets.
    """

    def __init__(self, url: str, follow_every: float | None = FOLLOW_SECONDS) -> None:
        self.generations = generations_of(url)
        self.generation = self.generations.live()
        self._model = self.generations.open(self.generation)
        self._retired: list[SqlReadModel] = []
        self._follow_every = follow_every
        self._checked_at = time.monotonic()
        self._lock = threading.Lock()

    def switched(self) -> bool:
        """Open the live generation if it is no longer the one held; True if it was not."""
        with self._lock:
            self._checked_at = time.monotonic()
            live = self.generations.live()
            if live == self.generation:
                return False
            # A thread may still be reading the old one: it is closed at the next switch.
            for model in self._retired:
                model.close()
            self._retired = [self._model]
            self._model = self.generations.open(live)
            self.generation = live
            return True

    def _current(self) -> SqlReadModel:
        every = self._follow_every
        if every is not None and time.monotonic() - self._checked_at >= every:
            self.switched()
        return self._model

    # --- the ReadModel interface, each call on the live generation ---------------------------

    def apply(
        self, events: Applied, offsets: Offsets, sources: Sequence[Source] | None = None
    ) -> None:
        self._current().apply(events, offsets, sources)

    def stored_offsets(self) -> dict[tuple[str, int], int]:
        return self._current().stored_offsets()

    def get_order(self, order_id: str) -> OrderView | None:
        return self._current().get_order(order_id)

    def orders_of(self, customer_id: str, limit: int = 50) -> list[OrderView]:
        return self._current().orders_of(customer_id, limit)

    def recent_orders(self, limit: int = 50) -> list[OrderView]:
        return self._current().recent_orders(limit)

    def history_after(self, order_id: str, seq: int) -> list[StatusEntry]:
        return self._current().history_after(order_id, seq)

    def changes_after(self, seq: int, limit: int) -> list[tuple[int, str]]:
        return self._current().changes_after(seq, limit)

    def last_history_seq(self) -> int:
        return self._current().last_history_seq()

    def stalled_orders(self, not_moved_since: int) -> list[OrderView]:
        return self._current().stalled_orders(not_moved_since)

    def orders_by_status(self) -> dict[Status, int]:
        return self._current().orders_by_status()

    def orders_on_their_way(self) -> dict[Status, int]:
        return self._current().orders_on_their_way()

    def statuses_reached_since(self, since: int) -> dict[Status, int]:
        return self._current().statuses_reached_since(since)

    def step_durations(self, start: Status, end: Status, since: int, limit: int) -> list[int]:
        return self._current().step_durations(start, end, since, limit)

    def stuck_orders(self, limit: int = 10) -> list[OrderView]:
        return self._current().stuck_orders(limit)

    def unplaced_events(self, seen_before: int) -> list[UnplacedEvent]:
        return self._current().unplaced_events(seen_before)

    def forget_unplaced(self, order_ids: Iterable[str]) -> None:
        self._current().forget_unplaced(order_ids)

    def start_web_session(self, session_id: str, customer_id: str, started_at: int) -> None:
        self._current().start_web_session(session_id, customer_id, started_at)

    def web_session_is_open(self, session_id: str, started_after: int) -> bool:
        return self._current().web_session_is_open(session_id, started_after)

    def end_web_session(self, session_id: str, ended_at: int) -> None:
        self._current().end_web_session(session_id, ended_at)

    def forget_web_sessions(self, started_before: int) -> None:
        self._current().forget_web_sessions(started_before)

    def close(self) -> None:
        for model in [*self._retired, self._model]:
            model.close()
        self.generations.close()
