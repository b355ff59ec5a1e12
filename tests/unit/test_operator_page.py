"""The pipeline page: only for the holder of the admin token, live over server-sent events."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from pizzashop.config import load_settings
from pizzashop.operator.pipeline import BrokerFigures, PipelineWatch
from pizzashop.readmodel.store import ReadModel, open_readmodel
from pizzashop.web.admin import pipeline_url
from pizzashop.web.app import create_app
from tests.unit.shop_events import T0, placed, stuck
from tests.unit.test_web import AcknowledgingTaker

TOKEN = "open sesame/+"
PAGES = ["/admin/pipeline", "/admin/pipeline.json", "/admin/pipeline/events"]


@pytest.fixture
def read_model(tmp_path: Path) -> Iterator[ReadModel]:
    model = open_readmodel(f"sqlite:///{tmp_path / 'rm.sqlite3'}")
    yield model
    model.close()


def operator_client(tmp_path: Path, read_model: ReadModel, token: str | None) -> TestClient:
    settings = load_settings(state_dir=tmp_path, secret_key="test-secret", admin_token=token)
    app = create_app(settings, read_model, AcknowledgingTaker())  # type: ignore[arg-type]  # a stand-in for the OrderTaker
    # The broker's figures without a broker: lag behind on one partition, two dead letters.
    lag = {"assemble": {("pizza-ordered", 0): 5}}
    app.state.pipeline = PipelineWatch(read_model.pipeline, lambda: BrokerFigures(lag, 2))
    return TestClient(app)


@pytest.fixture
def client(tmp_path: Path, read_model: ReadModel) -> TestClient:
    return operator_client(tmp_path, read_model, TOKEN)


def one_look_then_closing(client: TestClient) -> None:
    app: FastAPI = client.app  # type: ignore[assignment]  # the ASGI app is FastAPI here
    looks = iter([False])
    app.state.closing = lambda: next(looks, True)


BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.mark.parametrize("path", PAGES)
def test_without_a_configured_token_the_pages_do_not_exist(
    tmp_path: Path, read_model: ReadModel, path: str
) -> None:
    client = operator_client(tmp_path, read_model, None)
    assert client.get(path, headers=BEARER).status_code == 404
    assert client.get(path, params={"token": ""}).status_code == 404


@pytest.mark.parametrize("path", PAGES)
def test_without_the_token_the_answer_is_401_and_no_figures(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "in the works" not in response.text and "lag" not in response.text


@pytest.mark.parametrize("path", PAGES)
def test_a_wrong_token_is_403(client: TestClient, path: str) -> None:
    assert client.get(path, params={"token": "open sesame"}).status_code == 403
    assert client.get(path, headers={"Authorization": "Bearer guess"}).status_code == 403


def test_the_refusals_say_what_to_do(client: TestClient) -> None:
    page = client.get("/admin/pipeline")
    assert "For the shop&#39;s operator only" in page.text and "?token=" in page.text
    assert client.get("/admin/pipeline.json").json() == {
        "detail": "This page is for the shop's operator: open it with ?token= and the admin token."
    }
    assert "not the operator" in client.get("/admin/pipeline", params={"token": "x"}).text


def test_the_token_in_the_address_is_kept_in_the_session_and_taken_out_of_the_address(
    client: TestClient,
) -> None:
    response = client.get("/admin/pipeline", params={"token": TOKEN}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/admin/pipeline"
    assert TOKEN not in response.headers["set-cookie"], "the cookie keeps a fingerprint only"
    assert client.get("/admin/pipeline").status_code == 200
    assert client.get("/admin/pipeline.json").status_code == 200


def test_a_new_token_ends_the_sessions_opened_with_the_old_one(
    tmp_path: Path, read_model: ReadModel
) -> None:
    old = operator_client(tmp_path, read_model, TOKEN)
    old.get("/admin/pipeline", params={"token": TOKEN})
    new = operator_client(tmp_path, read_model, "a new token")
    new.cookies = old.cookies
    assert new.get("/admin/pipeline").status_code == 401


def test_the_json_has_the_snapshot(client: TestClient, read_model: ReadModel) -> None:
    read_model.writer.apply([placed("a", at=T0)], {})
    shown = client.get("/admin/pipeline.json", headers=BEARER).json()
    assemble = shown["stages"][1]
    assert (assemble["name"], assemble["in_works"], assemble["lag"]) == ("assemble", 1, 5)
    assert shown["dead_letters"] == 2 and shown["broker_reachable"] is True


def test_the_page_draws_every_stage_with_its_figures(
    client: TestClient, read_model: ReadModel
) -> None:
    read_model.writer.apply([placed("a", at=T0)], {})
    page = client.get("/admin/pipeline", headers=BEARER).text
    assert re.findall(r'data-stage="(\w+)"', page) == [
        "web",
        "assemble",
        "bake",
        "delivery",
        "status",
    ]
    assert re.findall(r"<span>(pizza-[a-z +-]+)</span>", page) == [
        "pizza-ordered + pizza-reserved + pizza-cancel", "pizza-assembled", "pizza-baked", "pizza-status",
    ]  # fmt: skip
    assert re.search(r'data-stage="assemble".*?data-figure="in_works">1<', page, re.DOTALL)
    assert '<script src="/static/pipeline.js" defer></script>' in page
    assert "<script>" not in page, "no inline scripts"


def test_order_ids_are_shown_escaped(client: TestClient, read_model: ReadModel) -> None:
    read_model.writer.apply([placed("<b>x</b>", at=T0), stuck("<b>x</b>", T0 + 1)], {})
    page = client.get("/admin/pipeline", headers=BEARER).text
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page


def test_the_live_stream_sends_snapshots_and_ends_when_the_server_closes(
    client: TestClient, read_model: ReadModel
) -> None:
    read_model.writer.apply([placed("a", at=T0), stuck("a", T0 + 5)], {})
    one_look_then_closing(client)
    stream = client.get("/admin/pipeline/events", headers=BEARER).text
    snapshots = [json.loads(d) for d in re.findall(r"^data: (\{.+\})$", stream, re.MULTILINE)]
    assert stream.startswith("event: snapshot\n") and len(snapshots) == 1
    assert snapshots[0]["stuck_count"] == 1


def test_the_url_to_open_the_page_carries_the_token() -> None:
    settings = load_settings(admin_token=TOKEN, web_port=8123)
    assert (
        pipeline_url(settings) == "http://127.0.0.1:8123/admin/pipeline?token=open%20sesame%2F%2B"
    )
    assert pipeline_url(load_settings()) is None
