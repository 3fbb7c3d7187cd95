"""The gateway's OpenAPI description (/openapi.json) and a page that reads it (/docs): written out
here, served as they are, with no script or style from elsewhere (a gateway may have no internet)."""

from __future__ import annotations

import html
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

_ERROR = {"description": "an error in OpenAI's shape: {error: {message, type, code}}"}
_BEARER: list[dict[str, list[str]]] = [{"bearer": []}]


def _op(summary: str, ok: str, *, body: str | None = None, codes: tuple[int, ...] = (400, 401)) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {"200": {"description": ok}, **{str(c): _ERROR for c in codes}}, "security": _BEARER}
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": {"type": "object", "description": body}}}}
    return op


def spec(admin: bool, version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of this gateway (admin routes only when the admin API is on)."""
    paths: dict[str, Any] = {
        "/v1/chat/completions": {"post": _op(
            "A chat completion, routed: model tierwise (routed), tierwise/<tier> or a configured model; stream for SSE",
            "the answer; x-tierwise-tier, -model, -score, -cost-usd and -request-id headers",
            body="OpenAI's chat completion request: messages, model, and answer parameters only (temperature, max_tokens, tools, ...);"
                 " Idempotency-Key and x-session-id headers", codes=(400, 401, 408, 409, 413, 429, 502, 503, 504))},
        "/v1/models": {"get": _op("the models a tenant key may name", "OpenAI's model list")},
        "/healthz": {"get": {"summary": "liveness", "responses": {"200": {"description": "{status: ok}"}}}},
        "/metrics": {"get": {"summary": "Prometheus metrics, from the loopback or with a metrics key", "responses": {"200": {"description": "text"},
                                                                                                                    "401": _ERROR}}},
    }
    if admin:
        paths["/admin/keys"] = {"get": _op("every stored key (never the key itself)", "{data: [keys]}"),
                                "post": _op("a new key, shown once", "{id, key, tenant}", body="{tenant, rpm?, expires? (epoch s)}")}
        paths["/admin/keys/{key_id}"] = {"delete": _op("revoke a key", "{id, tenant, revoked}", codes=(401, 404))}
        paths["/admin/keys/{key_id}/rotate"] = {"post": _op("a new key for the same tenant and limits; the old one revoked", "{id, key}",
                                                            codes=(401, 404))}
    return {"openapi": "3.1.0", "info": {"title": "tierwise gateway", "version": version}, "paths": paths,
            "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}}}


def routes_of(document: dict[str, Any]) -> tuple[Any, Any]:
    """(the /openapi.json handler, the /docs handler) for a document."""

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    async def docs(request: Request) -> Response:
        rows = "".join(f"<tr><td><code>{html.escape(m.upper())}</code></td><td><code>{html.escape(p)}</code></td>"
                       f"<td>{html.escape(op['summary'])}</td><td>{html.escape(', '.join(op['responses']))}</td></tr>"
                       for p, ops in document["paths"].items() for m, op in ops.items())
        page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(document['info']['title'])}</title></head>"
                f"<body><h1>{html.escape(document['info']['title'])} {html.escape(document['info']['version'])}</h1>"
                "<p>Authorization: Bearer &lt;key&gt;. The machine-readable description: <a href='/openapi.json'>/openapi.json</a>.</p>"
                f"<table border='1' cellpadding='4'><tr><th>method</th><th>path</th><th>what</th><th>answers</th></tr>{rows}</table>"
                "</body></html>")
        return HTMLResponse(page)

    return openapi, docs
