"""structlog pipeline: small processors that keep secrets and message text out of the logs."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

import structlog

from router._secrets import is_secret, scrub

_CONTENT_KEYS = frozenset({"messages", "content", "prompt", "response", "answer"})


def redact_secrets(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Mask credential fields and anything in a string shaped like an API key."""
    for key, value in list(event.items()):
        if is_secret(key) and key not in ("tokens_in", "tokens_out"):
            event[key] = "***"
        elif isinstance(value, str):
            event[key] = scrub(value)
    return event


def drop_content(enabled: bool) -> Any:
    """A processor that removes message text unless the user turned content logging on."""

    def processor(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        if not enabled:
            for key in _CONTENT_KEYS & event.keys():
                del event[key]
        return event

    return processor


def log_info(logger: Any, event: str, **fields: Any) -> None:
    """`logger.info(event, **fields)`, skipped at once when the logger says it would drop the event
    (ours asks the stdlib logger: its processors cost microseconds a request for nothing)."""
    enabled = getattr(logger, "is_enabled_for", None)
    if enabled is None or enabled(logging.INFO):
        logger.info(event, **fields)


def make_logger(log_content: bool = False) -> Any:
    """A structlog logger over the stdlib logger 'tierwise': silent until the app configures logging.
    Bound once, not a lazy proxy that binds again on every call."""
    return structlog.wrap_logger(
        logging.getLogger("tierwise"),
        processors=[
            structlog.stdlib.filter_by_level,
            drop_content(log_content),
            redact_secrets,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.JSONRenderer(default=str),
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
    ).bind()
