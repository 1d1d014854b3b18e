"""The `seqlab serve` web app: a JSON API (FastAPI) and one static page (plain JS modules and SVG,
all served from this package: the page loads nothing from elsewhere, and its Content-Security-Policy
says so to the browser).

    GET  /                   the page (#unroller, #generate, #translate, #tag, #forecast, #speech, #curves,
                             #gradients)
    GET  /api/models         toy cells and the runs under --models
    POST /api/unroll         one text through a model, step by step (see api_unroll.py)
    POST /api/backward       the gradient of one output flowing back through the steps (api_backward.py)
    POST /api/saliency       integrated gradients and gradient x input per input token
    POST /api/vanishing      ||dL/dh_t|| against distance for a W_hh of spectral radius rho (the live demo)
    POST /api/neurons/match, /contexts, /trace   neuron search (api_neurons.py)
    POST /api/generate       language model sampling          POST /api/seq2seq   translation / QA + attention
    POST /api/tag            tags + per-token probabilities   POST /api/forecast  forecast + intervals
    GET  /api/speech/clips, POST /api/speech, /api/speech/upload   a recording through a CTC recogniser:
                             spectrogram, posteriors, alignment, hidden states (api_speech.py)
    GET  /api/curves?run=..  training curves
    GET  /api/openapi.json   the API's schema

Errors are JSON {"detail": "one line"}: 400 bad input for the model, 403 a model path outside
--models, 404 no such run, 413 a body over 64 KiB (a WAV upload: 2 MiB), 422 a field out of its
limits (names the field), 500 a bug (its traceback goes to the server's log). A message written for
the command line names the page's field instead of the flag ("prime text", not "--prime"). Every
response, errors included, carries the security headers (Content-Security-Policy, X-Content-Type-Options: nosniff, ...).
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.middleware.gzip import GZipMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware

from seqlab.errors import UserError
from seqlab.web import api_backward, api_neurons, api_pages, api_speech, api_unroll
from seqlab.web.registry import Forbidden, NotFound, Registry
from seqlab.web.schemas import MAX_BODY

STATIC = Path(__file__).parent / "static"
LOOPBACK_NAMES = ["127.0.0.1", "localhost", "::1", "[::1]"]
HEADERS = [(b"content-security-policy", b"default-src 'self'; img-src 'self' data:; style-src 'self'; "
                                        b"object-src 'none'; frame-ancestors 'none'"),
           (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]


# the page fields the command line's flags stand for, in messages the tasks wrote for the CLI
FLAG_FIELDS = {"prime": "prime text", "origin": "origin", "beam": "beam", "temperature": "temperature",
               "top-k": "top-k", "top-p": "top-p", "length": "length", "seed": "seed", "history": "history"}
_FLAG = re.compile(r"(?<![\w-])--(" + "|".join(re.escape(f) for f in FLAG_FIELDS) + r")(?![\w-])")


def for_the_page(message: str) -> str:
    """A UserError's message with the CLI flags it names ("--prime") replaced by the page's field
    names ("prime text"); "--models" (the server's own flag) stays."""
    return _FLAG.sub(lambda m: FLAG_FIELDS[m.group(1)], message)


class Guard:
    """ASGI middleware, the outermost one: refuse request bodies over `max_bytes` (413, by
    Content-Length or while reading a chunked body) and add the security headers to every response,
    the 413s and 500s included (an unhandled exception is answered here, then re-raised so that the
    server logs it; Starlette's own 500 answer would come from outside this middleware)."""

    def __init__(self, app, max_bytes: int = MAX_BODY, limits: dict[str, int] | None = None):
        self.app, self.max_bytes, self.limits = app, max_bytes, limits or {}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope.get("path") in self.limits:  # a route that takes a file (a WAV upload) allows more
            return await Guard(self.app, self.limits[scope["path"]])(scope, receive, send)
        started = False

        async def with_headers(msg):
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
                msg = {**msg, "headers": list(msg.get("headers", [])) + HEADERS}
            await send(msg)

        too_big = f"request body over {self.max_bytes // 1024} KiB; send less" + (" text" if self.max_bytes <= MAX_BODY
                                                                                   else "")
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await JSONResponse({"detail": too_big}, 413)(scope, receive, with_headers)
        seen = 0

        async def limited():
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_bytes:
                    raise HTTPException(413, too_big)
            return msg

        try:
            await self.app(scope, limited, with_headers)
        except Exception as exc:
            if not started:
                detail = f"internal error ({type(exc).__name__}); the server's log has the details"
                await JSONResponse({"detail": detail}, 500)(scope, receive, with_headers)
            raise


def _validation_detail(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors():
        where = ".".join(str(x) for x in e.get("loc", ()) if x not in ("body", "query"))
        parts.append(f"{where}: {e.get('msg', 'invalid')}" if where else e.get("msg", "invalid"))
    return "; ".join(parts) or "invalid request"


def create_app(models: str | Path | None = None, loopback_only: bool = False, host: str | None = None) -> FastAPI:
    """The app serving the runs under `models` (None: the toy cells only). loopback_only: answer only
    requests addressed to 127.0.0.1 / localhost / [::1], or to `host` (the loopback address it is bound to,
    e.g. 127.0.0.2): a guard against DNS rebinding."""
    app = FastAPI(title="seqlab", version="1", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json")
    app.state.registry = Registry(models)
    app.include_router(api_unroll.router)
    app.include_router(api_backward.router)
    app.include_router(api_neurons.router)
    app.include_router(api_pages.router)
    app.include_router(api_speech.router)

    @app.exception_handler(UserError)
    async def user_error(request, exc: UserError):
        status = 403 if isinstance(exc, Forbidden) else 404 if isinstance(exc, NotFound) else 400
        return JSONResponse({"detail": for_the_page(str(exc))}, status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc: RequestValidationError):
        return JSONResponse({"detail": _validation_detail(exc)}, 422)

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if loopback_only:
        bound = [] if not host else [host] if host.startswith("[") or ":" not in host else [host, f"[{host}]"]
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=[*LOOPBACK_NAMES, *bound])
    app.add_middleware(GZipMiddleware, minimum_size=4096)  # an unrolled text is mostly numbers: ~4x smaller
    app.add_middleware(Guard, max_bytes=MAX_BODY, limits={"/api/speech/upload": api_speech.MAX_AUDIO})
    return app
