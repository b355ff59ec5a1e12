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
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol

from pizzashop.readmodel import ReadModelUnusable
from pizzashop.readmodel.database import SqlDatabase

FIRST = 1
ANOTHER_REBUILD = "another `pizzashop readmodel rebuild` is running on this read model"
REBUILD_LOCK = 0x72656275  # "rebu"; with the schema's hash, one lock per read model
FOLLOW_SECONDS = 1.0  # how often a web process asks which generation is live


class Generations(Protocol):
    def live(self) -> int:
        """The generation every process should read and write."""

    def open(self, generation: int) -> SqlDatabase: ...

    def fresh(self, generation: int) -> SqlDatabase:
        """An empty database for `generation`, whatever an earlier attempt left there."""

    def drop(self, generation: int) -> None: ...

    def switch_to(self, generation: int) -> None:
        """Make `generation` the live one, in one atomic step."""

    def describe(self, generation: int) -> str:
        """Where the generation is kept, for people."""

    def scratch(self) -> AbstractContextManager[SqlDatabase]:
        """An empty generation that no process follows, gone after use (to check the live one)."""

    def rebuilding(self) -> AbstractContextManager[None]:
        """Held while a new generation is built: ReadModelUnusable if another rebuild holds it
        (both would build the same generation)."""

    def close(self) -> None: ...


def generations_of(url: str) -> Generations:
    """The generations of the read model at `url` (`sqlite:///path/to/file`, the default, or
    `postgresql://...`), or ReadModelUnusable saying what is missing."""
    if url.startswith("sqlite:///"):
        return SqliteGenerations(Path(url.removeprefix("sqlite:///")))
    if url.startswith(("postgresql://", "postgres://")):
        try:
            import psycopg  # noqa: F401  # only to say what to install when it is missing
        except ImportError as e:
            raise ReadModelUnusable(
                f"a PostgreSQL read model needs psycopg ({e.name} is missing): "
                "pip install 'pizzashop[postgres]'"
            ) from e
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

    def open(self, generation: int) -> SqlDatabase:
        from pizzashop.readmodel.sqlite import SqliteDatabase

        return SqliteDatabase(self.path_of(generation))

    def fresh(self, generation: int) -> SqlDatabase:
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
    def scratch(self) -> Iterator[SqlDatabase]:
        from pizzashop.readmodel.sqlite import SqliteDatabase

        with tempfile.TemporaryDirectory(prefix="pizzashop-verify-") as folder:
            model = SqliteDatabase(Path(folder) / self.path.name)
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

    def open(self, generation: int) -> SqlDatabase:
        from pizzashop.readmodel.postgres import PostgresDatabase

        return PostgresDatabase(self.url, schema=self.schema_of(generation))

    def fresh(self, generation: int) -> SqlDatabase:
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
    def scratch(self) -> Iterator[SqlDatabase]:
        from pizzashop.readmodel.postgres import PostgresDatabase

        schema = f"{self.home}_verify_{secrets.token_hex(4)}"
        self._run("CREATE SCHEMA {}", schema)
        try:
            model = PostgresDatabase(self.url, schema=schema)
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


class LiveDatabase:
    """The live generation's database, following the pointer when it is switched: every part
    of the read model made on it reads and writes the new generation from then on.

    `follow_every` seconds (a web process): it moves to a new generation on its own.
    None (the status service, a tool): only `switched()` moves it, so the status service's
    loop can first drop what it read for the old generation and resume from the new one's
    offsets.
    """

    def __init__(self, url: str, follow_every: float | None = None) -> None:
        self.generations = generations_of(url)
        self.generation = self.generations.live()
        self._database = self.generations.open(self.generation)
        self._retired: list[SqlDatabase] = []
        self._follow_every = follow_every
        self._checked_at = time.monotonic()
        self._lock = threading.Lock()

    @property
    def placeholder(self) -> str:
        return self._database.placeholder

    def transaction(self, writing: bool) -> AbstractContextManager[Any]:
        every = self._follow_every
        if every is not None and time.monotonic() - self._checked_at >= every:
            self.switched()
        return self._database.transaction(writing)

    def switched(self) -> bool:
        """Open the live generation if it is no longer the one held; True if it was not."""
        with self._lock:
            self._checked_at = time.monotonic()
            live = self.generations.live()
            if live == self.generation:
                return False
            # A thread may still be reading the old one: it is closed at the next switch.
            for database in self._retired:
                database.close()
            self._retired = [self._database]
            self._database = self.generations.open(live)
            self.generation = live
            return True

    def close(self) -> None:
        for database in [*self._retired, self._database]:
            database.close()
        self.generations.close()
