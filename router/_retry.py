"""Retry decisions as small strategy objects (tenacity), shared by the sync and async clients."""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Callable
from typing import Any

from tenacity import RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_base

from router._config import RetryConfig

# Statuses worth another try: timeouts, conflicts, rate limits, server errors, overloaded (529).
RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
# Errors that are the caller's: retrying them only bills the same failure again.
NEVER_RETRY_STATUS = frozenset({400, 401, 403, 404, 422})
_TRANSIENT_NAMES = frozenset({"Timeout", "APITimeoutError", "APIConnectionError", "ServiceUnavailableError"})
_QUOTA_WORDS = ("insufficient_quota", "exceeded your current quota", "quota exceeded", "billing")


def status_of(exc: BaseException) -> int | None:
    """The HTTP status an exception carries, if any."""
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def _class_names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def is_quota_exhausted(exc: BaseException) -> bool:
    """A 429 that says the account is out of credit: waiting will not help."""
    return status_of(exc) == 429 and any(w in str(exc).lower() for w in _QUOTA_WORDS)


_MISSING_KEY = ("missing credentials", "api_key client option must be set", "api key not found", "no api key")
TRIES_ATTR = "tierwise_tries"  # set on an exception by the client: how many requests the provider got


def tries_of(exc: BaseException) -> int:
    """How many times the call behind this exception was sent (retries included)."""
    tries = getattr(exc, TRIES_ATTR, 1)
    return tries if isinstance(tries, int) and tries > 0 else 1


def is_missing_key(exc: BaseException) -> bool:
    """The provider SDK found no API key (litellm reports it as a 500): no retry will fix it."""
    text = str(exc).lower()
    return any(words in text for words in _MISSING_KEY)


def is_malformed_reply(exc: BaseException) -> bool:
    """The provider answered, but not with JSON we could read: it may have billed the call."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if "JSONDecodeError" in _class_names(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def is_auth_error(exc: BaseException) -> bool:
    """401/403 or a missing key: the same key fails every time, so it raises instead of escalating."""
    return status_of(exc) in (401, 403) or "AuthenticationError" in _class_names(exc) or is_missing_key(exc)


def is_context_window(exc: BaseException) -> bool:
    return "ContextWindowExceededError" in _class_names(exc)


def is_retryable(exc: BaseException) -> bool:
    """True for transient failures: connection errors, timeouts, 408/409/429/5xx/529."""
    names = _class_names(exc)
    if "ContextWindowExceededError" in names or "ContentPolicyViolationError" in names or is_missing_key(exc):
        return False
    if is_malformed_reply(exc):  # answered and maybe billed: another try would pay again
        return False
    status = status_of(exc)
    if status in NEVER_RETRY_STATUS:
        return False
    if status == 429:
        return not is_quota_exhausted(exc)
    if names & _TRANSIENT_NAMES:
        return True
    return status is not None and (status in RETRY_STATUS or 500 <= status < 600)


def is_caller_error(exc: BaseException) -> bool:
    """A request every model would reject (bad parameters): no fallback, no escalation."""
    names = _class_names(exc)
    if "ContextWindowExceededError" in names or "ContentPolicyViolationError" in names:
        return False
    return status_of(exc) in (400, 422)


def _headers_of(exc: BaseException) -> dict[str, str]:
    found: dict[str, str] = {}
    for source in (getattr(getattr(exc, "response", None), "headers", None), getattr(exc, "litellm_response_headers", None), getattr(exc, "headers", None)):
        if source:
            try:
                found.update({str(k).lower(): str(v) for k, v in dict(source).items()})
            except (TypeError, ValueError):
                continue
    return found


def retry_after_s(exc: BaseException, now: Callable[[], float] = time.time) -> float | None:
    """Seconds the provider asked us to wait (Retry-After / retry-after-ms), or None."""
    headers = _headers_of(exc)
    if "retry-after-ms" in headers:
        try:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
        return max(0.0, seconds) if math.isfinite(seconds) else None
    except ValueError:
        pass
    try:  # an HTTP date; anything else is ignored (the provider's header is not ours to trust)
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return None if parsed is None else max(0.0, parsed.timestamp() - now())
    except (TypeError, ValueError, OverflowError):
        return None


class wait_retry_after_or_jitter(wait_base):
    """Honour the provider's Retry-After (up to a cap), else full-jitter exponential backoff."""

    def __init__(self, config: RetryConfig, rng: random.Random | None = None) -> None:
        self.config = config
        self.rng = rng or random.Random()

    def __call__(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if exc is not None:
            asked = retry_after_s(exc)
            if asked is not None:
                return min(asked, self.config.retry_after_cap_s)
        ceiling = min(self.config.max_wait_s, self.config.initial_wait_s * 2 ** (retry_state.attempt_number - 1))
        return self.rng.uniform(0, ceiling)


def retry_kwargs(config: RetryConfig) -> dict[str, Any]:
    """The tenacity arguments both Retrying and AsyncRetrying take."""
    return {
        "retry": retry_if_exception(is_retryable),
        "stop": stop_after_attempt(config.attempts),
        "wait": wait_retry_after_or_jitter(config),
        "reraise": True,
    }
