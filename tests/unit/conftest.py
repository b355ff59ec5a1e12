"""Read models to test against: SQLite and PostgreSQL, always both (`make test` installs
PostgreSQL with scripts/ensure-postgres when it is missing)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pizzashop.readmodel.store import ReadModel, open_readmodel
from tests.postgres_cluster import Cluster

OpenReadModel = Callable[[], ReadModel]


def new_database_url(request: pytest.FixtureRequest, sqlite_file: Path) -> str:
    """A new, empty database of the kind under test (`request.param`)."""
    if request.param == "postgres":
        cluster: Cluster = request.getfixturevalue("postgres_cluster")
        return cluster.new_database()
    return f"sqlite:///{sqlite_file}"


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a new, empty read model of the kind under test is, to open it as a test likes."""
    return new_database_url(request, tmp_path / "readmodel.sqlite3")


@pytest.fixture(params=["sqlite", "postgres"])
def open_model(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenReadModel]:
    """Opens a new, empty read model of the kind under test (each call a new database)."""
    opened: list[ReadModel] = []

    def open_one() -> ReadModel:
        file = tmp_path / f"readmodel-{len(opened)}.sqlite3"
        opened.append(open_readmodel(new_database_url(request, file)))
        return opened[-1]

    yield open_one
    for model in opened:
        model.close()


@pytest.fixture
def read_model(open_model: OpenReadModel) -> ReadModel:
    return open_model()
