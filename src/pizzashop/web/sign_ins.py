"""The web app's sign-ins, kept in the read model's database (its `web_sessions` table) so
that every web process sees a sign-out at once. Not order state, so no dual write; a rebuilt
generation of the read model takes them over (readmodel/rebuilding.py)."""

from __future__ import annotations

from pizzashop.readmodel.database import Database, query


class SignIns:
    """Written without the status service's write lock: that lock guards the read-modify-write
    of orders, and a sign-in should not wait for a batch of them."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def start(self, session_id: str, customer_id: str, started_at: int) -> None:
        """Record a sign-in (ms since the epoch)."""
        p = self._database.placeholder
        with self._database.transaction(writing=False) as cursor:
            cursor.execute(
                "INSERT INTO web_sessions (session_id, customer_id, started_at) "
                f"VALUES ({p}, {p}, {p})",
                (session_id, customer_id, started_at),
            )

    def is_open(self, session_id: str, started_after: int) -> bool:
        """Whether the sign-in is known, not ended, and started after `started_after` (ms)."""
        p = self._database.placeholder
        rows = query(
            self._database,
            f"SELECT 1 FROM web_sessions WHERE session_id = {p} AND ended_at IS NULL "
            f"AND started_at > {p}",
            (session_id, started_after),
        )
        return bool(rows)

    def end(self, session_id: str, ended_at: int) -> None:
        """Sign-out: the session is over for every copy of its cookie."""
        p = self._database.placeholder
        with self._database.transaction(writing=False) as cursor:
            cursor.execute(
                f"UPDATE web_sessions SET ended_at = {p} WHERE session_id = {p} "
                "AND ended_at IS NULL",
                (ended_at, session_id),
            )

    def forget_started_before(self, started_before: int) -> None:
        """Drop sign-ins started before `started_before` (ms): they are over by their age."""
        p = self._database.placeholder
        with self._database.transaction(writing=False) as cursor:
            cursor.execute(f"DELETE FROM web_sessions WHERE started_at < {p}", (started_before,))
