"""Read models to test against: SQLite and PostgreSQL, always both (`make test` installs
PostgreSQL with scripts/ensure-postgres when it is missing)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pizzashop.readmodel.store import ReadModel, open_readmodel
from tests.postgres_cluster import Cluster

OpenReadModel = Callable[[], ReadModel]


@pytest.fixture(params=["sqlite", "postgres"])
def open_model(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenReadModel]:
    """Opens a new, empty read model of the kind under test (each call a new database)."""
    opened: list[ReadModel] = []

    def new_url() -> str:
        if request.param == "postgres":
            cluster: Cluster = request.getfixturevalue("postgres_cluster")
            return cluster.new_database()
        return f"sqlite:///{tmp_path / f'readmodel-{len(opened)}.sqlite3'}"

    def open_one() -> ReadModel:
        opened.append(open_readmodel(new_url()))
        return opened[-1]

    yield open_one
    for model in opened:
        model.close()


@pytest.fixture
def read_model(open_model: OpenReadModel) -> ReadModel:
    return open_model()
