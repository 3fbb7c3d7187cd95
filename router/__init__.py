"""tierwise: send every LLM request to the cheapest model that can answer it well.

    from router import Router
    resp = Router().complete([{"role": "user", "content": "What is 2+2?"}], tenant="acme")
    resp.choices[0].message.content, resp.route

Importing this package does not import litellm or scikit-learn.
"""

from router._checks import QualityCheck, Verdict, non_empty, not_truncated
from router._config import ModelSpec, RetryConfig, RouterConfig, TenantBudget, TierConfig
from router._errors import (
    BudgetExceeded,
    BudgetState,
    ConfigError,
    DuplicateRequestError,
    EscalationExhausted,
    InvalidMessagesError,
    InvalidRequestError,
    ProviderError,
    TierwiseError,
)
from router._router import AsyncRouter, Router
from router._types import Attempt, Route, RoutedResponse

__all__ = [
    "AsyncRouter",
    "Attempt",
    "BudgetExceeded",
    "BudgetState",
    "ConfigError",
    "DuplicateRequestError",
    "EscalationExhausted",
    "InvalidMessagesError",
    "InvalidRequestError",
    "ModelSpec",
    "ProviderError",
    "QualityCheck",
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
