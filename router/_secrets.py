"""Keeping credentials out of every text we write or raise: logs, ledger reasons, errors, their causes."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable
from typing import Any

# Parameter and variable names whose values are credentials: never logged, printed or stored.
SECRET_WORDS = ("key", "secret", "token", "password", "credential")
_KEYLIKE = re.compile(r"\b(sk|pk|rk|AIza|xai|gsk)[-_A-Za-z0-9]{12,}")
_MIN_SECRET = 8  # shorter values would mask ordinary words


def is_secret(name: str) -> bool:
    """True for a parameter name that holds a credential (api_key, aws_secret_access_key, ...)."""
    lowered = name.lower()
    return any(word in lowered for word in SECRET_WORDS) and not lowered.endswith(("_tokens", "_per_token"))


def mask_keys(text: str) -> str:
    """Mask anything in a text shaped like a provider API key (sk-..., AIza..., gsk_...)."""
    return _KEYLIKE.sub(lambda m: m.group(1) + "-***", text)


_env_cache: tuple[float, int, frozenset[str]] = (-1.0, -1, frozenset())


def _env_secrets() -> frozenset[str]:
    """Values of environment variables named like credentials; read again when a variable is added
    or removed, else at most once a second (logging calls this for every event)."""
    global _env_cache
    now, count = time.monotonic(), len(os.environ)
    if now - _env_cache[0] > 1.0 or count != _env_cache[1]:
        _env_cache = (now, count, frozenset(v for k, v in os.environ.items() if is_secret(k) and len(v) >= _MIN_SECRET))
    return _env_cache[2]


def secret_values(specs: Iterable[Any] = ()) -> list[str]:
    """Every credential we may hold: configured on a model, or in an environment variable named
    like one (OPENAI_API_KEY, ...), which litellm reads on its own. Longest first."""
    found = {v for spec in specs for k, v in spec.params.items() if is_secret(k) and isinstance(v, str) and len(v) >= _MIN_SECRET}
    return sorted(found | _env_secrets(), key=len, reverse=True)


def scrub(text: str, specs: Iterable[Any] = ()) -> str:
    """Mask configured and environment credentials, and anything shaped like an API key."""
    for value in secret_values(specs):
        if value in text:
            text = text.replace(value, "***")
    return mask_keys(text)


def scrub_exception(exc: BaseException, specs: Iterable[Any] = ()) -> None:
    """Scrub an exception and its whole cause/context chain in place, so that a traceback we raise
    (ours chains the provider's error as `__cause__`) carries no credential."""
    secrets = secret_values(specs)
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if any(s in str(current) for s in secrets) or _KEYLIKE.search(str(current)):
            clean = scrub(str(current), specs)
            try:
                current.args = (clean,)
                if isinstance(getattr(current, "message", None), str):
                    current.message = clean  # type: ignore[attr-defined]
            except (AttributeError, TypeError):  # an exception type that will not take new args
                pass
        current = current.__cause__ or current.__context__
