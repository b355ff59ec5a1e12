"""The API's documentation page, /docs, served with Swagger UI's files from the app itself:
it works offline, and under the same strict content policy as every other page.

Swagger UI's files come from the fastapi-offline package (only its files are used). FastAPI's
own docs page would start Swagger UI with an inline script, which the policy forbids, so the
page here is a template that starts it from static/docs.js.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

ASSETS = "/docs/assets"
SWAGGER_UI_FILES = Path(str(files("fastapi_offline") / "static"))

router = APIRouter(include_in_schema=False)


def serve_api_docs(app: FastAPI) -> None:
    """Serve /docs and Swagger UI's files; the app must be made with docs_url=None."""
    app.mount(ASSETS, StaticFiles(directory=SWAGGER_UI_FILES), name="swagger-ui")
    app.include_router(router)


@router.get("/docs")
def api_docs(request: Request) -> HTMLResponse:
    templates: Jinja2Templates = request.app.state.templates
    context = {"assets": ASSETS, "openapi_url": request.app.openapi_url, "title": request.app.title}
    return templates.TemplateResponse(request, "docs.html", context)
