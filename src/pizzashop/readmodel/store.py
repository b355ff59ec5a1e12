"""The read model opened: its live database, and one part on it for each kind of user.

Each process takes the parts it needs: the status service the writer and the watchdog's
queries, the web app the order views and the pipeline's (and builds its sign-ins on the same
database), the CLI the order views. A switch to a rebuilt generation happens in the database
beneath them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pizzashop.readmodel.generations import LiveDatabase, SqliteGenerations
from pizzashop.readmodel.pipeline import PipelineQueries
from pizzashop.readmodel.views import OrderViews
from pizzashop.readmodel.watchdog import WatchdogQueries
from pizzashop.readmodel.writer import OrderWriter


@dataclass
class ReadModel:
    database: LiveDatabase
    writer: OrderWriter = field(init=False)
    orders: OrderViews = field(init=False)
    watchdog: WatchdogQueries = field(init=False)
    pipeline: PipelineQueries = field(init=False)

    def __post_init__(self) -> None:
        self.writer = OrderWriter(self.database)
        self.orders = OrderViews(self.database)
        self.watchdog = WatchdogQueries(self.database)
        self.pipeline = PipelineQueries(self.database)

    def close(self) -> None:
        self.database.close()


def open_readmodel(url: str, follow_every: float | None = None) -> ReadModel:
    """`sqlite:///path/to/file` (the default) or `postgresql://...`: its live generation (see
    generations.py), which a `pizzashop readmodel rebuild` may replace. `follow_every`
    seconds, it moves to a new one by itself; without, when `database.switched()` is asked."""
    return ReadModel(LiveDatabase(url, follow_every))


def readmodel_exists(url: str) -> bool:
    """False for a SQLite file not made yet (a reading command must not make one)."""
    if url.startswith("sqlite:///"):
        generations = SqliteGenerations(Path(url.removeprefix("sqlite:///")))
        return generations.path_of(generations.live()).exists()
    return True
