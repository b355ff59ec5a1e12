"""The web app on bad days: headers that keep its pages to itself, sign-outs that count on
every web process, a cap on live streams, a rate limit on orders, and docs that work offline."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner

from pizzashop import contract
from pizzashop.commands.rate_limit import OrderRateLimit, TooManyOrders
from pizzashop.config import load_settings
from pizzashop.readmodel.store import ReadModel, open_readmodel
from pizzashop.web import session as web_session
from pizzashop.web.app import create_app
from pizzashop.web.security import SECURITY_HEADERS
from tests.postgres_cluster import Cluster
from tests.shop_harness import served, wait_for
from tests.unit.test_web import GOOD, AcknowledgingTaker, csrf_of, signed_in

WEB = Path(__file__).parents[2] / "src" / "pizzashop" / "web"
MakeApp = Callable[..., FastAPI]


@pytest.fixture
def taker() -> AcknowledgingTaker:
    return AcknowledgingTaker()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'rm.sqlite3'}"


@pytest.fixture
def make_app(tmp_path: Path, database_url: str, taker: AcknowledgingTaker) -> Iterator[MakeApp]:
    """Makes a web process over the test's database, with settings changed as asked."""
    opened: list[ReadModel] = []

    def make(**changes: Any) -> FastAPI:
        changes = {"database_url": database_url, **changes}
        settings = load_settings(state_dir=tmp_path, secret_key="test-secret", **changes)
        opened.append(open_readmodel(settings.readmodel_url))
        return create_app(settings, opened[-1], taker)  # type: ignore[arg-type]  # a stand-in for the OrderTaker

    yield make
    for model in opened:
        model.close()


@pytest.fixture
def client(make_app: MakeApp) -> TestClient:
    return TestClient(make_app())


def placed_order(client: TestClient) -> str:
    response = client.post("/api/orders", json=GOOD)
    assert response.status_code == 201, response.text
    return str(response.json()["order_id"])


# --- security headers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/signin", "/", "/api/orders", "/static/shop.css", "/no-such-page", "/api/orders/nope",
     "/docs", "/openapi.json", "/asyncapi.yaml", "/asyncapi.json", "/healthz"],
)  # fmt: skip
def test_every_answer_carries_the_security_headers(client: TestClient, path: str) -> None:
    response = client.get(path, follow_redirects=False)
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, f"{path} ({response.status_code}) lacks {name}"


def test_a_server_error_carries_the_security_headers_too(make_app: MakeApp) -> None:
    app = make_app()

    def broken() -> None:
        raise RuntimeError("the oven exploded")

    app.add_api_route("/api/broken", broken)
    app.add_api_route("/broken", broken)
    client = TestClient(app, raise_server_exceptions=False)
    for path in ["/api/broken", "/broken"]:
        response = client.get(path)
        assert response.status_code == 500
        assert "exploded" not in response.text, "the error's own words stay in the log"
        assert (
            response.headers["Content-Security-Policy"]
            == SECURITY_HEADERS["Content-Security-Policy"]
        )


def test_the_policy_allows_only_the_shops_own_scripts_and_styles() -> None:
    policy = SECURITY_HEADERS["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert SECURITY_HEADERS["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("template", sorted((WEB / "templates").glob("*.html")), ids=str)
def test_no_template_has_an_inline_script_style_or_handler(template: Path) -> None:
    html = template.read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "a script without src"
    assert not re.search(r"<style|\sstyle=", html), "an inline style"
    assert not re.search(r"\son[a-z]+=", html), "an inline event handler"


# --- sessions end everywhere -----------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def shared_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        cluster: Cluster = request.getfixturevalue("postgres_cluster")
        return cluster.new_database()
    return f"sqlite:///{tmp_path / 'shared.sqlite3'}"


def copy_of_the_cookie(source: TestClient, app: FastAPI) -> TestClient:
    """Another client, on another web process, holding the same cookie."""
    copy = TestClient(app)
    copy.cookies.set("pizzashop_session", source.cookies["pizzashop_session"])
    return copy


def test_signing_out_on_one_web_process_refuses_the_cookies_copy_on_another(
    make_app: MakeApp, shared_database: str
) -> None:
    one = signed_in(TestClient(make_app(database_url=shared_database)))
    copy = copy_of_the_cookie(one, make_app(database_url=shared_database))
    assert copy.get("/api/orders").status_code == 200, "the copy works while the session is open"

    assert one.delete("/api/session").status_code == 204
    assert copy.get("/api/orders").status_code == 401
    page = copy.get("/orders", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/signin"


def test_the_sign_out_form_ends_the_session_for_every_copy(
    make_app: MakeApp, taker: AcknowledgingTaker
) -> None:
    one = signed_in(TestClient(make_app()))
    copy = copy_of_the_cookie(one, make_app())
    one.post("/signout", data={"csrf": csrf_of(one.get("/").text)})
    assert copy.get("/", follow_redirects=False).headers["location"] == "/signin"
    assert copy.post("/api/orders", json=GOOD).status_code == 401 and not taker.placed


def test_a_new_sign_in_ends_the_one_before(make_app: MakeApp) -> None:
    one = signed_in(TestClient(make_app()), "Ada")
    copy = copy_of_the_cookie(one, make_app())
    signed_in(one, "Bob")
    assert copy.get("/api/orders").status_code == 401


def test_a_session_ends_after_its_lifetime_whatever_the_cookie_says(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = TestClient(make_app(session_days=2))
    response = client.post("/api/session", json={"name": "Italo"})
    assert "Max-Age=172800" in response.headers["set-cookie"], "the cookie lives as long"
    assert client.get("/api/orders").status_code == 200
    later = contract.now_ms() + 2 * 24 * 3600 * 1000 + 1
    monkeypatch.setattr(web_session, "now_ms", lambda: later)
    assert client.get("/api/orders").status_code == 401


def test_a_cookie_from_before_sessions_were_kept_is_signed_out(client: TestClient) -> None:
    data = base64.b64encode(json.dumps({"customer_id": "c1", "name": "Old"}).encode())
    client.cookies.set("pizzashop_session", TimestampSigner("test-secret").sign(data).decode())
    assert client.get("/api/orders").status_code == 401
    assert client.get("/", follow_redirects=False).headers["location"] == "/signin"


# --- live streams per session ------------------------------------------------------------------


@pytest.fixture
def app_and_browser(make_app: MakeApp) -> Iterator[tuple[FastAPI, httpx.Client]]:
    """The app on a real server (the test client cannot hold a stream open), and a browser."""
    app = make_app(streams_per_session=2, admin_token="token")
    with served(app) as running, httpx.Client(base_url=running.url, timeout=10) as browser:
        yield app, browser
    assert not running.thread.is_alive(), "the server did not stop"


def open_streams(app: FastAPI) -> int:
    return int(app.state.open_streams.open_in_total())


def test_a_session_gets_a_few_streams_and_the_next_one_a_429(
    app_and_browser: tuple[FastAPI, httpx.Client],
) -> None:
    app, browser = app_and_browser
    browser.post("/api/session", json={"name": "Italo"})
    order_id = browser.post("/api/orders", json=GOOD).json()["order_id"]
    events = f"/api/orders/{order_id}/events"
    with ExitStack() as streams:
        for _ in range(2):
            assert streams.enter_context(browser.stream("GET", events)).status_code == 200
        refused = browser.get(events)
        assert refused.status_code == 429
        assert "2 live streams are open" in refused.json()["detail"]
    wait_for(
        lambda: open_streams(app) == 0,
        timeout=5,
        what="streams closed by the client to be released",
    )
    with browser.stream("GET", events) as again:
        assert again.status_code == 200, "a closed stream gives its place back"


def test_the_operators_live_stream_is_capped_too(
    app_and_browser: tuple[FastAPI, httpx.Client],
) -> None:
    _app, browser = app_and_browser
    bearer = {"Authorization": "Bearer token"}
    with ExitStack() as streams:
        for _ in range(2):
            opened = streams.enter_context(
                browser.stream("GET", "/admin/pipeline/events", headers=bearer)
            )
            assert opened.status_code == 200
        assert browser.get("/admin/pipeline/events", headers=bearer).status_code == 429


def test_streams_are_released_when_the_server_closes(make_app: MakeApp) -> None:
    app = make_app()
    with served(app) as running, httpx.Client(base_url=running.url, timeout=10) as browser:
        browser.post("/api/session", json={"name": "Italo"})
        order_id = browser.post("/api/orders", json=GOOD).json()["order_id"]
        with browser.stream("GET", f"/api/orders/{order_id}/events"):
            wait_for(lambda: open_streams(app) == 1, timeout=5, what="the stream to be counted")
            running.stop()
            wait_for(lambda: not running.thread.is_alive(), timeout=10, what="the server to stop")
    assert open_streams(app) == 0


# --- orders per customer per minute ------------------------------------------------------------


def test_past_the_rate_limit_an_order_is_a_429_with_retry_after_and_nothing_is_produced(
    make_app: MakeApp, taker: AcknowledgingTaker
) -> None:
    client = signed_in(TestClient(make_app(orders_per_minute=2)))
    first = client.post("/api/orders", json=GOOD)
    client.post("/api/orders", json=GOOD)
    refused = client.post("/api/orders", json=GOOD)
    assert refused.status_code == 429 and len(taker.placed) == 2
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "nothing was ordered" in refused.json()["detail"]
    replay = client.post(
        "/api/orders", json=GOOD, headers={"Idempotency-Key": first.headers["Idempotency-Key"]}
    )
    assert replay.status_code == 201, "a replayed key produces nothing, so the limit lets it by"
    assert replay.headers["Idempotent-Replayed"] == "true" and len(taker.placed) == 2


def test_the_rate_limit_is_per_customer(make_app: MakeApp, taker: AcknowledgingTaker) -> None:
    app = make_app(orders_per_minute=1)
    ada, bob = signed_in(TestClient(app), "Ada"), signed_in(TestClient(app), "Bob")
    assert ada.post("/api/orders", json=GOOD).status_code == 201
    assert bob.post("/api/orders", json=GOOD).status_code == 201
    assert ada.post("/api/orders", json=GOOD).status_code == 429


def test_past_the_rate_limit_the_form_says_so_and_keeps_the_choices(
    make_app: MakeApp, taker: AcknowledgingTaker
) -> None:
    client = signed_in(TestClient(make_app(orders_per_minute=1)))
    client.post("/api/orders", json=GOOD)
    form = {**GOOD, "csrf": csrf_of(client.get("/").text), "idempotency_key": "k-2"}
    page = client.post("/orders", data=form)
    assert page.status_code == 429 and "Retry-After" in page.headers
    assert "nothing was ordered" in page.text and 'value="k-2"' in page.text
    assert len(taker.placed) == 1


def test_the_window_slides_and_says_how_long_to_wait() -> None:
    now = [1000.0]
    limit = OrderRateLimit(per_minute=2, clock=lambda: now[0])
    limit.take("c1")
    now[0] += 20
    limit.take("c1")
    with pytest.raises(TooManyOrders) as refused:
        limit.take("c1")
    assert refused.value.retry_after == 40
    now[0] += 40
    limit.take("c1")  # the first order has left the window


def test_no_rate_limit_when_it_is_zero() -> None:
    limit = OrderRateLimit(per_minute=0)
    for _ in range(1000):
        limit.take("c1")


# --- the API docs, offline -----------------------------------------------------------------------


def test_the_docs_page_uses_only_the_apps_own_files(client: TestClient) -> None:
    html = client.get("/docs").text
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert urls and all(url.startswith("/") and not url.startswith("//") for url in urls), urls
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "no inline script"
    for url in urls:
        assert client.get(url).status_code == 200, f"{url} is not served"
    assert client.get("/redoc").status_code == 404
