"""tierwise: send every LLM request to the cheapest model that can answer it well.

    from router import Router
    resp = Router().complete([{"role": "user", "content": "What is 2+2?"}], tenant="acme")
    resp.choices[0].message.content, resp.route

Importing this package does no work: each name loads its module on first use (PEP 562), and
litellm and scikit-learn are imported only when a call or a training needs them. The wings have
doors of their own: `router.ledger` (the spend ledger), `router.evaluate` (offline evaluation),
`router.checks` (quality checks), `router.testing` (helpers for your tests).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_HOMES = {
    "AsyncRouter": "router._router",
    "Router": "router._router",
    "Attempt": "router._types",
    "Route": "router._types",
    "RoutedResponse": "router._types",
    "QualityCheck": "router.checks",
    "Verdict": "router.checks",
    "non_empty": "router.checks",
    "not_truncated": "router.checks",
    "ModelSpec": "router._config",
    "RetryConfig": "router._config",
    "RouterConfig": "router._config",
    "TenantBudget": "router._config",
    "TierConfig": "router._config",
    "BudgetExceeded": "router._errors",
    "BudgetState": "router._errors",
    "ConfigError": "router._errors",
    "DuplicateRequestError": "router._errors",
    "EscalationExhausted": "router._errors",
    "InvalidMessagesError": "router._errors",
    "InvalidRequestError": "router._errors",
    "LedgerError": "router._errors",
    "LedgerUnavailable": "router._errors",
    "AlreadyBilled": "router._errors",
    "ProviderError": "router._errors",
    "RateLimited": "router._errors",
    "RequestIdConflict": "router._errors",
    "TierwiseError": "router._errors",
    "AttemptOutcome": "router._types",
    "RequestStatus": "router._types",
    "LLMClient": "router._client",
    "LiteLLMClient": "router._client",
}
# Written out, not computed, so that tools and readers see the public API; a test keeps it in step.
__all__ = [
    "AlreadyBilled",
    "AsyncRouter",
    "Attempt",
    "AttemptOutcome",
    "BudgetExceeded",
    "BudgetState",
    "ConfigError",
    "DuplicateRequestError",
    "EscalationExhausted",
    "InvalidMessagesError",
    "InvalidRequestError",
    "LLMClient",
    "LedgerError",
    "LedgerUnavailable",
    "LiteLLMClient",
    "ModelSpec",
    "ProviderError",
    "QualityCheck",
    "RateLimited",
    "RequestIdConflict",
    "RequestStatus",
    "RetryConfig",
    "Route",
    "RoutedResponse",
    "Router",
    "RouterConfig",
    "TenantBudget",
    "TierConfig",
    "TierwiseError",
    "Verdict",
    "non_empty",
    "not_truncated",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'router' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from router._client import LiteLLMClient, LLMClient
    from router._config import ModelSpec, RetryConfig, RouterConfig, TenantBudget, TierConfig
    from router._errors import (
        AlreadyBilled,
        BudgetExceeded,
        BudgetState,
        ConfigError,
        DuplicateRequestError,
        EscalationExhausted,
        InvalidMessagesError,
        InvalidRequestError,
        LedgerError,
        LedgerUnavailable,
        ProviderError,
        RateLimited,
        RequestIdConflict,
        TierwiseError,
    )
    from router._router import AsyncRouter, Router
    from router._types import Attempt, AttemptOutcome, RequestStatus, Route, RoutedResponse
    from router.checks import QualityCheck, Verdict, non_empty, not_truncated
