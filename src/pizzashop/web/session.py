"""Who the customer is: a signed session cookie made at sign-in, and its anti-forgery token."""

from __future__ import annotations

import hmac
import secrets

from fastapi import HTTPException, Request

from pizzashop import menu


def sign_in(request: Request, name: str) -> str:
    """Start a session for a customer; the id is made here, never taken from a form."""
    request.session.clear()
    request.session["customer_id"] = secrets.token_urlsafe(16)
    request.session["name"] = name.strip()[: menu.MAX_NAME_LENGTH]
    request.session["csrf"] = secrets.token_urlsafe(16)
    return str(request.session["customer_id"])


def customer_id(request: Request) -> str | None:
    value = request.session.get("customer_id")
    return str(value) if value else None


def customer_name(request: Request) -> str:
    return str(request.session.get("name", ""))


def required_customer(request: Request) -> str:
    """The signed-in customer of an API call, or 401."""
    found = customer_id(request)
    if found is None:
        raise HTTPException(401, "sign in first: POST /api/session with your name")
    return found


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(16)
    return str(token)


def check_csrf(request: Request, submitted: str | None) -> None:
    """A form must carry the token of this session: another site cannot read it to forge one."""
    expected = request.session.get("csrf")
    if not expected or not submitted or not hmac.compare_digest(str(expected), submitted):
        raise HTTPException(
            403, "this form has expired or did not come from this shop; please try again"
        )
