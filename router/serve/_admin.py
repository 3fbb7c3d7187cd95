"""The admin API under /admin/, for operators' tools: the same key operations as `tierwise keys`,
guarded by an admin key (its SHA-256 in `gateway.admin_keys`). Without admin keys the routes do
not exist (404), so a gateway is never administrable by accident."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from router._errors import InvalidRequestError, TierwiseError
from router.ledger import Ledger
from router.ledger._keys import checked, new_key
from router.serve._http import _error, _typed, read_json


class Admin:
    """GET/POST /admin/keys, DELETE /admin/keys/{id}, POST /admin/keys/{id}/rotate."""

    def __init__(self, digests: list[str], ledger: Callable[[], Ledger]) -> None:
        self._digests = digests
        self._ledger = ledger

    def routes(self) -> list[Route]:
        return [Route("/admin/keys", self._guard(self._list), methods=["GET"]), Route("/admin/keys", self._guard(self._add), methods=["POST"]),
                Route("/admin/keys/{key_id}", self._guard(self._revoke), methods=["DELETE"]),
                Route("/admin/keys/{key_id}/rotate", self._guard(self._rotate), methods=["POST"])] if self._digests else []

    def _guard(self, handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def run(request: Request) -> Response:
            auth = request.headers.get("authorization", "")
            key = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
            digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
            if not key or not any(hmac.compare_digest(digest, d) for d in self._digests):
                return _error(401, "the admin API needs an admin key (gateway.admin_keys)", "invalid_request_error", "invalid_api_key")
            try:
                result: Response = await handler(request)
                return result
            except TierwiseError as exc:
                return _typed(exc)

        return run

    async def _list(self, request: Request) -> Response:
        keys = await asyncio.to_thread(self._ledger().keys.api_keys)
        return JSONResponse({"object": "list", "data": [k.__dict__ for k in keys]})

    async def _add(self, request: Request) -> Response:
        body = await read_json(request, 1 << 16)  # a key's fields fit in far less
        if isinstance(body, Response):
            return body
        if not isinstance(body, dict) or set(body) - {"tenant", "rpm", "expires"}:
            raise InvalidRequestError('the body is {"tenant": ..., "rpm": N (optional), "expires": epoch seconds (optional)}')
        expires = body.get("expires")
        if expires is not None and (isinstance(expires, bool) or not isinstance(expires, (int, float))):
            raise InvalidRequestError("expires is epoch seconds")
        now = time.time()
        checked(body.get("tenant"), body.get("rpm"), expires, now)
        key_id, key, digest = new_key()
        await asyncio.to_thread(self._ledger().keys.add_key, key_id, body["tenant"], digest, now, expires, body.get("rpm"))
        return JSONResponse({"id": key_id, "key": key, "tenant": body["tenant"], "note": "shown once: only its digest is kept"},
                            status_code=201)

    async def _revoke(self, request: Request) -> Response:
        old = await asyncio.to_thread(self._ledger().keys.revoke_key, request.path_params["key_id"], time.time())
        if old is None:
            return _error(404, f"no key {request.path_params['key_id']!r}", "invalid_request_error", "not_found")
        return JSONResponse({"id": old.id, "tenant": old.tenant, "revoked": old.revoked})

    async def _rotate(self, request: Request) -> Response:
        now = time.time()
        old = await asyncio.to_thread(self._ledger().keys.revoke_key, request.path_params["key_id"], now)
        if old is None:
            return _error(404, f"no key {request.path_params['key_id']!r}", "invalid_request_error", "not_found")
        key_id, key, digest = new_key()
        await asyncio.to_thread(self._ledger().keys.add_key, key_id, old.tenant, digest, now, old.expires, old.rpm)
        return JSONResponse({"id": key_id, "key": key, "tenant": old.tenant, "revoked": old.id, "note": "shown once"}, status_code=201)
