"""The API's documentation: /docs, served with Swagger UI's files from the app itself, so it works
offline and under the same strict content policy as every other page; and beside the OpenAPI
description of the JSON API, the AsyncAPI document of the shop's topics.

Swagger UI's files come from the fastapi-offline package (only its files are used). FastAPI's
own docs page would start Swagger UI with an inline script, which the policy forbids, so the
page here is a template that starts it from static/docs.js.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from pizzashop.asyncapi import asyncapi_json, asyncapi_text

ASSETS = "/docs/assets"
SWAGGER_UI_FILES = Path(str(files("fastapi_offline") / "static"))
YAML = "application/yaml"

router = APIRouter(include_in_schema=False)


def serve_api_docs(app: FastAPI) -> None:
    """Serve /docs and Swagger UI's files, and the AsyncAPI document as YAML and as JSON, made
    from the contract once, here; the app must be made with docs_url=None."""
    app.mount(ASSETS, StaticFiles(directory=SWAGGER_UI_FILES), name="swagger-ui")
    app.state.asyncapi_yaml = asyncapi_text()
    app.state.asyncapi_json = asyncapi_json()
    app.include_router(router)


@router.get("/docs")
def api_docs(request: Request) -> HTMLResponse:
    templates: Jinja2Templates = request.app.state.templates
    context = {"assets": ASSETS, "openapi_url": request.app.openapi_url, "title": request.app.title}
    return templates.TemplateResponse(request, "docs.html", context)


@router.get("/asyncapi.yaml")
def asyncapi_as_yaml(request: Request) -> Response:
    return Response(request.app.state.asyncapi_yaml, media_type=YAML)


@router.get("/asyncapi.json")
def asyncapi_as_json(request: Request) -> Response:
    return Response(request.app.state.asyncapi_json, media_type="application/json")
