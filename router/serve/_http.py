"""Errors in OpenAI's shape, for every route of the gateway: never a traceback."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from router._errors import (
    AlreadyBilled,
    BudgetExceeded,
    DuplicateRequestError,
    EscalationExhausted,
    InvalidMessagesError,
    InvalidRequestError,
    LedgerError,
    ProviderError,
    RateLimited,
    RequestIdConflict,
)


def _error(status: int, message: str, kind: str, code: str | None = None, **extra: Any) -> JSONResponse:
    headers = {"x-should-retry": "false"} if status in (400, 401, 409, 413, 429) else {}
    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": code, **extra}}, status_code=status, headers=headers)


_PARSE_ON_LOOP = 1 << 20  # a body larger than this is parsed off the event loop (30 MB take ~0.2 s)


async def read_json(request: Request, max_bytes: int) -> Any:
    """The request's body parsed as JSON; a 413 or 400 response when it is over `max_bytes` (by its
    Content-Length, or found while reading: never buffered past the limit) or not JSON."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        return _too_large(max_bytes)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            return _too_large(max_bytes)
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        return await asyncio.to_thread(json.loads, raw) if len(raw) > _PARSE_ON_LOOP else json.loads(raw)
    except (ValueError, RecursionError):
        return _error(400, "the body is not JSON (or is nested too deeply)", "invalid_request_error")


def _too_large(max_bytes: int) -> JSONResponse:
    return _error(413, f"the request body is over {max_bytes / 2**20:g} MiB (gateway.max_body_mb)", "invalid_request_error",
                  "request_too_large")


def _typed(exc: BaseException) -> JSONResponse:
    """A tierwise error as the HTTP status and body an OpenAI client understands; never a traceback."""
    if isinstance(exc, BudgetExceeded):
        s = exc.state
        budget = {"tenant": s.tenant, "cap_usd": None if s.cap_usd is None else str(s.cap_usd), "spent_usd": str(s.spent_usd),
                  "held_usd": str(s.reserved_usd), "remaining_usd": None if s.remaining_usd is None else str(s.remaining_usd),
                  "period": s.period}
        return _error(429, str(exc), "insufficient_quota", "budget_exceeded", budget=budget)
    if isinstance(exc, RateLimited):
        response = _error(429, str(exc), "rate_limit_exceeded", "rate_limit_exceeded")
        response.headers["retry-after"] = str(max(1, round(exc.retry_after_s)))
        response.headers["x-should-retry"] = "true"  # unlike a budget refusal, this one passes with the minute
        return response
    if isinstance(exc, (RequestIdConflict, DuplicateRequestError)):
        return _error(409, str(exc), "invalid_request_error", "request_id_conflict")
    if isinstance(exc, (InvalidMessagesError, InvalidRequestError)):
        return _error(400, str(exc), "invalid_request_error")
    if isinstance(exc, ProviderError):
        timeout = exc.status_code in (408, 504) or "Timeout" in str(exc)
        return _error(504 if timeout else 502, str(exc), "api_error", "provider_error")
    if isinstance(exc, EscalationExhausted):
        return _error(502, str(exc), "api_error", "escalation_exhausted")
    if isinstance(exc, AlreadyBilled):
        return _error(409, str(exc), "invalid_request_error", "already_billed")
    if isinstance(exc, LedgerError):
        return _error(503, str(exc), "api_error", "ledger_unavailable")
    return _error(500, f"{type(exc).__name__}: {exc}", "api_error")


def _unauthorised() -> JSONResponse:
    return _error(401, "Incorrect API key provided: use a key listed (as its SHA-256) under gateway.keys", "invalid_request_error",
                  "invalid_api_key")


async def _not_found(request: Request, exc: Exception) -> Response:
    """Unknown routes and methods answer in OpenAI's error shape, like every other error."""
    status = getattr(exc, "status_code", 404)
    what = "method not allowed" if status == 405 else "no such route"
    return _error(status, f"{what}: {request.method} {request.url.path}", "invalid_request_error", "not_found" if status == 404 else None)
