"""`tierwise serve`: an OpenAI-compatible gateway in front of the router.

    tierwise serve --config tierwise.yaml --port 8400
    OpenAI(base_url="http://127.0.0.1:8400/v1", api_key="tw-acme-...").chat.completions.create(model="tierwise", ...)

Needs the `serve` extra: pip install 'tierwise[serve]'.
"""

from __future__ import annotations

import os
import sys
from typing import Any

__all__ = ["app_from_env", "create_app", "run", "startup_line", "timed_protocol"]


def create_app(config: Any, router: Any = None, *, freeze_gc: bool = False) -> Any:
    """The gateway as an ASGI app (Starlette) for a RouterConfig; see router.serve._app."""
    try:
        from router.serve._app import create_app as _create
    except ImportError as exc:
        raise ImportError("the gateway needs Starlette and uvicorn: pip install 'tierwise[serve]'") from exc
    return _create(config, router, freeze_gc=freeze_gc)


def timed_protocol(head_timeout_s: float = 30.0) -> Any:
    """uvicorn's HTTP/1.1 protocol cutting off a client whose request head takes longer than this
    (pass it as uvicorn's `http=`; `tierwise serve` uses 30 s)."""
    from router.serve._protocol import TimedH11Protocol

    return type("TimedH11Protocol", (TimedH11Protocol,), {"head_timeout_s": float(head_timeout_s)})


def startup_line(config: Any, host: str, port: int, workers: int) -> str:
    """What `tierwise serve` says when it starts: where, how many workers, which ledger kind (never its URL or a key)."""
    url = config.ledger_url()
    kind = "PostgreSQL" if url.startswith(("postgresql://", "postgres://")) else "SQLite"
    tenants = len(config.gateway.keys)
    return (f"tierwise serve: listening on http://{host}:{port}/v1 ({workers} worker{'s' if workers != 1 else ''}, "
            f"{kind} ledger, {tenants} tenant{'s' if tenants != 1 else ''} with keys)")


def app_from_env() -> Any:
    """The app for the config file named by TIERWISE_CONFIG: what each uvicorn worker builds (the
    worker's process is the gateway's own, so its start-up objects are frozen out of the GC)."""
    from router._config import RouterConfig

    return create_app(RouterConfig.from_env(), freeze_gc=True)


def run(config_path: str, host: str = "127.0.0.1", port: int = 8400, workers: int = 1) -> None:
    """Serve until stopped; each worker process builds its own router from the config file."""
    try:
        import uvicorn
    except ImportError as exc:
        raise ImportError("the gateway needs Starlette and uvicorn: pip install 'tierwise[serve]'") from exc
    from router._config import RouterConfig

    config = RouterConfig.from_file(config_path)  # a bad config fails here, once, not in every worker
    os.environ["TIERWISE_CONFIG"] = os.path.abspath(config_path)
    print(startup_line(config, host, port, workers), file=sys.stderr, flush=True)
    from router.serve._protocol import TimedH11Protocol

    # Slow clients: the request head must arrive within 30 s, the body within gateway.read_timeout_s.
    uvicorn.run("router.serve:app_from_env", factory=True, host=host, port=port, workers=workers, log_level="warning",
                http=TimedH11Protocol, timeout_keep_alive=5)
