"""ASGI middleware around the whole app, so that no route can forget them: a token on every request, a size limit on
request bodies (JSON only), and headers that keep the browser from running anything the page did not ship.
"""

from __future__ import annotations

import json
from http.cookies import CookieError, SimpleCookie
from typing import Awaitable, Callable

from annotation.tokens import TokenTable

__all__ = ["COOKIE", "ANNOTATOR_KEY", "TokenAuth", "RequestLimits", "SecurityHeaders"]

COOKIE = "vng_verify_token"
ANNOTATOR_KEY = "vng.annotator"  # where TokenAuth leaves the annotator's name in the ASGI scope

Scope = dict
Message = dict
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

# The page loads only its own script and style, talks only to its server, and may not be framed.
_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


async def _reply(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def _token(scope: Scope) -> str | None:
    authorization = _header(scope, b"authorization")
    if authorization and authorization.startswith("Bearer "):
        return authorization[len("Bearer "):].strip()
    cookie = _header(scope, b"cookie")
    if cookie:
        jar = SimpleCookie()
        try:
            jar.load(cookie)
        except CookieError:  # garbage in the header: as if no cookie came
            return None
        if COOKIE in jar:
            return jar[COOKIE].value
    return None


class TokenAuth:
    """401 for any request without a valid token, except the paths in ``open_paths`` (the login link, which checks
    its token itself)."""

    def __init__(self, app: App, tokens: TokenTable, *, open_paths: frozenset[str]) -> None:
        self.app, self.tokens, self.open_paths = app, tokens, open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths:
            return await self.app(scope, receive, send)
        annotator = self.tokens.annotator(_token(scope))
        if annotator is None:
            return await _reply(send, 401, "missing or unknown token: open the link the server printed for you "
                                           "(…/login?token=…)")
        scope[ANNOTATOR_KEY] = annotator
        await self.app(scope, receive, send)


class RequestLimits:
    """413 for a body over ``max_body_bytes`` (counted as it arrives, whatever Content-Length says), 415 for a body
    that is not JSON. A cross-site form cannot send JSON without the browser asking first, so this also closes
    the door to cross-site request forgery that the SameSite cookie leaves ajar in old browsers."""

    def __init__(self, app: App, *, max_body_bytes: int) -> None:
        self.app, self.max_body_bytes = app, max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            return await _reply(send, 413, f"request body over {self.max_body_bytes} bytes")
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before sending its body
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return await _reply(send, 413, f"request body over {self.max_body_bytes} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        content_type = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
        if size and content_type != "application/json":
            return await _reply(send, 415, "request bodies must be JSON (Content-Type: application/json)")
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class SecurityHeaders:
    """On every response: the content security policy, no MIME sniffing, no referrer (the login link holds a
    token), no framing; and ``no-store`` unless the route chose its own caching."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {key.lower() for key, _ in headers}
                headers += [(b"content-security-policy", _CSP.encode()), (b"x-content-type-options", b"nosniff"),
                            (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY")]
                if b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
