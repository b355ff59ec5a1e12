"""A throwaway PostgreSQL cluster for the read model tests: initdb in a temporary folder,
started on a free port, a fresh schema for each read model, removed at the end."""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.ports import free_port

SEARCHED = ["/usr/local/bin", *sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
START_TIMEOUT_SECONDS = 30


class PostgresMissing(RuntimeError):
    """PostgreSQL's server binaries are not on this machine (or cannot run here)."""


def postgres_bin_dir() -> Path:
    for folder in SEARCHED:
        if all(
            os.access(Path(folder) / tool, os.X_OK) for tool in ("initdb", "pg_ctl", "postgres")
        ):
            return Path(folder)
    raise PostgresMissing(f"initdb, pg_ctl and postgres not found in {', '.join(SEARCHED)}")


def _server_user() -> list[str]:
    """initdb refuses to run as root; then the cluster runs as the `postgres` user."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresMissing(
            "running as root and there is no `postgres` user to run the server"
        ) from None
    return ["runuser", "-u", "postgres", "--"]


class Cluster:
    def __init__(self, port: int) -> None:
        self.port = port
        self._names = (f"readmodel_{n}" for n in itertools.count(1))

    def new_database(self) -> str:
        """A URL whose tables start empty: a schema of its own is much quicker than a database."""
        import psycopg

        schema = next(self._names)
        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(f"CREATE SCHEMA {schema}")
        return f"{self.url()}?options=-csearch_path%3D{schema}"

    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"


@contextmanager
def throwaway_postgres() -> Iterator[Cluster]:
    bin_dir, as_user = postgres_bin_dir(), _server_user()
    home = Path(tempfile.mkdtemp(prefix="pizzashop-pg-"))
    if as_user:
        owner = pwd.getpwnam("postgres")
        os.chown(home, owner.pw_uid, owner.pw_gid)
    data, port = home / "data", free_port()
    try:
        _run(
            as_user
            + [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ]
        )
        _run(
            as_user
            + [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-w",
                "-t",
                str(START_TIMEOUT_SECONDS),
                "-l",
                str(home / "server.log"),
                "-o",
                f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c fsync=off",
                "start",
            ]
        )
        try:
            yield Cluster(port)
        finally:
            _run(as_user + [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"])
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command[:6])} failed ({done.returncode}): "
            f"{(done.stderr or done.stdout).strip()[-800:]}"
        )
