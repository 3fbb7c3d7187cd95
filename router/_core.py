"""The wiring shared by Router and AsyncRouter, and the small records a run hands its driver."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import InitVar, dataclass, field
from typing import Any

from classifiers import Classifier
from policies import Policy
from router._client import LLMClient, missing_keys
from router._config import LEARNING_TENANT, ModelSpec, RouterConfig, TierConfig
from router._errors import InvalidRequestError, ProviderError, RateLimited
from router._retry import is_auth_error, is_missing_key, status_of
from router._secrets import scrub, scrub_exception
from router._sections import RateLimit
from router._types import Attempt, RoutedResponse, attach_route, route_from_dict
from router.checks import QualityCheck
from router.ledger import Ledger, Reservation, StoredRequest

_PROVIDER_BASES = frozenset({"OpenAIError", "APIError", "APIStatusError"})


def is_provider_error(exc: BaseException) -> bool:
    """True for an error the provider (or litellm on its behalf) raised, as opposed to ours."""
    return any(cls.__name__ in _PROVIDER_BASES for cls in type(exc).__mro__)


@dataclass
class Core:
    """Everything a request needs, wired once per Router."""

    config: RouterConfig
    classifier: InitVar[Classifier]  # the starting pair; `brain` owns them from then on
    policy: InitVar[Policy]
    ledger: Ledger
    client: LLMClient
    checks: QualityCheck | None
    logger: Any
    clock: Callable[[], float] = time.monotonic
    verifier: Any = None  # escalation.verifier, loaded (a router.verifier.Verifier)
    cache_store: Any = None  # the response cache when it is not the ledger's (router._redis_cache.RedisCache)
    tiers: dict[str, TierConfig] = field(init=False)
    # The live (classifier, policy) pair: a refit swaps it whole, so a request sees old or new, never half.
    brain: tuple[Classifier, Policy] = field(init=False)
    # What learning fitted for one tenant alone (learning without `shared`): that tenant's requests use
    # it, and no other tenant's ever does. One dict assignment a swap.
    brains: dict[str, tuple[Classifier, Policy]] = field(init=False, default_factory=dict)
    verifiers: dict[str, Any] = field(init=False, default_factory=dict)

    def __post_init__(self, classifier: Classifier, policy: Policy) -> None:
        self.tiers = {t.name: t for t in self.config.tiers}
        self.brain = (classifier, policy)

    def brain_for(self, tenant: str) -> tuple[Classifier, Policy]:
        """The prompt model and thresholds that route this tenant's requests."""
        return self.brains.get(tenant, self.brain)

    def verifier_for(self, tenant: str) -> Any:
        """The verifier that scores this tenant's answers (None: none)."""
        return self.verifiers.get(tenant, self.verifier)

    def specs(self) -> list[ModelSpec]:
        """Every configured model, for scrubbing their keys out of texts."""
        return [spec for tier in self.config.tiers for spec in tier.models]

    def spec_for(self, model: str) -> ModelSpec:
        """The configured spec of a model (its api_base, keys, prices), or a bare one."""
        return next((spec for spec in self.specs() if spec.model == model), ModelSpec(model=model))

    def pin(self, kwargs: dict[str, Any], tier: str | None) -> tuple[str | None, str | None]:
        """(tier, model) a caller pinned, `model` popped from kwargs: `tier=` a configured tier, `model=` a configured model."""
        model = kwargs.pop("model", None)
        if model is not None:
            home = next((t.name for t in self.config.tiers for s in t.models if s.model == model), None)
            if home is None:
                known = [s.model for t in self.config.tiers for s in t.models]
                raise InvalidRequestError(f"model {model!r} is not configured; configured models: {known} (or leave model out to route)")
            return home, str(model)
        if tier is not None and tier not in self.tiers:
            raise InvalidRequestError(f"tier {tier!r} is not configured; tiers: {list(self.tiers)}")
        return tier, None

    def limit(self, tenant: str) -> RateLimit | None:
        """The tenant's rate limit (rate_limits, "*" for the rest); the learning loop's tenant has none."""
        return None if tenant == LEARNING_TENANT else self.config.rate_limits.get(tenant) or self.config.rate_limits.get("*")

    def admit(self, tenant: str) -> None:
        """Count the request against the tenant's rpm, or raise RateLimited."""
        limit = self.limit(tenant)
        if limit is None:
            return
        if limit.rpm is not None:
            found = self.ledger.take_request(tenant, limit.rpm)
            if found is not None:
                raise RateLimited(f"tenant {tenant!r} sent {limit.rpm} requests this minute, its rate limit: retry in {found:.0f} s",
                                  tenant, found)

    def hold_tokens(self, tenant: str, most: Callable[[], int]) -> tuple[int, int] | None:
        """Hold the request's most tokens (`most()`, counted only under a tpm) in the tenant's minute:
        (minute, tokens) to correct when it is billed, None without a tpm; RateLimited when they do not fit."""
        limit = self.limit(tenant)
        if limit is None or limit.tpm is None:
            return None
        tokens = most()
        minute, wait = self.ledger.take_tokens(tenant, tokens, limit.tpm)
        if minute is None:
            raise RateLimited(f"tenant {tenant!r}: {tokens} more tokens (this request's most, held) would pass its {limit.tpm} tokens "
                              f"a minute: retry in {wait:.0f} s, or lower max_tokens", tenant, wait)
        return minute, tokens

    def why(self, exc: BaseException) -> str:
        """An attempt's reason for an exception: its type and message, keys scrubbed, bounded."""
        return f"{type(exc).__name__}: {scrub(str(exc), self.specs())[:300]}"

    def provider_error(self, model: str, exc: BaseException, attempts: list[Attempt], tier: str | None = None) -> ProviderError:
        """The typed error for a provider failure, with every configured key scrubbed."""
        where = f"tier {tier!r}, model {model}" if tier else model
        if is_missing_key(exc):
            needs = missing_keys(model)
            hint = f"set {' or '.join(needs)}" if needs else "set the provider's API key"
            message = f"{where}: no API key: {hint}, or api_key on the model in the config"
        elif is_auth_error(exc):
            message = f"{where}: the provider refused the API key ({type(exc).__name__}); check the key of this model"
        else:
            message = f"{where}: {type(exc).__name__}: {exc}"
        message = scrub(message, self.specs())
        scrub_exception(exc, self.specs())  # it becomes our error's __cause__: no key in the traceback
        return ProviderError(message[:500], model=model, status_code=status_of(exc), attempts=list(attempts))


@dataclass(frozen=True)
class Request:
    """What the caller asked for, validated."""

    messages: list[dict[str, Any]]
    tenant: str
    request_id: str
    keyed: bool  # the caller gave the request id: it is claimed, and its answer stored for replays
    checks: QualityCheck | None
    strict: bool
    kwargs: Mapping[str, Any]
    pinned: bool = False  # the caller chose the tier (or model): no stepping down to fit a budget
    model: str | None = None  # the one model a caller pinned
    session: str | None = None  # the conversation this turn belongs to (session_id=)

    @property
    def stream(self) -> bool:
        return bool(self.kwargs.get("stream"))


@dataclass
class Call:
    """One model call the driver must make."""

    tier: str
    spec: ModelSpec
    attempt: int
    reservation: Reservation | None
    kwargs: Mapping[str, Any]
    started: float = 0.0


@dataclass
class Replay:
    """A request id seen before: its stored answer, or that another caller still works on it."""

    request_id: str
    stored: StoredRequest
    tenant: str = "default"
    cached: bool = False  # a response-cache hit, not a replay of this request id

    def answer(self, rebuild: Callable[[dict[str, Any]], Any]) -> RoutedResponse | None:
        """The stored answer of a finished request id, or None while it is still pending."""
        stored = self.stored
        if stored.status != "done" or stored.response is None or stored.route is None:
            return None
        route = route_from_dict(stored.route)
        route.replayed = not self.cached
        return attach_route(rebuild(stored.response), route)
