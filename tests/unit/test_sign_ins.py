"""The web's sign-ins, in the read model's database: a sign-out counts for every web process.

Every test runs against SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest

from pizzashop.readmodel.store import ReadModel
from pizzashop.web.sign_ins import SignIns
from tests.unit.shop_events import T0


@pytest.fixture
def sign_ins(read_model: ReadModel) -> SignIns:
    return SignIns(read_model.database)


def test_a_web_session_is_open_until_it_is_ended(sign_ins: SignIns) -> None:
    sign_ins.start("s1", "customer-1", started_at=T0)
    assert sign_ins.is_open("s1", started_after=T0 - 1)
    sign_ins.end("s1", ended_at=T0 + 5)
    assert not sign_ins.is_open("s1", started_after=T0 - 1), "ended is ended"
    assert not sign_ins.is_open("never-started", started_after=0)


def test_a_web_session_started_too_long_ago_is_not_open(sign_ins: SignIns) -> None:
    sign_ins.start("old", "customer-1", started_at=T0)
    assert not sign_ins.is_open("old", started_after=T0)


def test_old_web_sessions_are_forgotten_and_new_ones_kept(sign_ins: SignIns) -> None:
    sign_ins.start("old", "customer-1", started_at=T0)
    sign_ins.start("new", "customer-2", started_at=T0 + 10)
    sign_ins.forget_started_before(started_before=T0 + 10)
    assert not sign_ins.is_open("old", started_after=0)
    assert sign_ins.is_open("new", started_after=0)
