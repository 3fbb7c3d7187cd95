"""The config's smaller sections: the gateway, rate limits, the response cache, sessions,
telemetry, the answer bars and learning. `RouterConfig` (router._config) holds one of each."""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_BUDGET_USD = Decimal(1_000_000_000)  # keeps every sum of money inside the ledger's 64-bit nano-dollars


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GatewayConfig(_Strict):
    """`tierwise serve`: which API keys name which tenant. Keys are stored as SHA-256 hex digests,
    never in clear (`python -c "import hashlib; print(hashlib.sha256(b'tw-acme-...').hexdigest())"`)."""

    keys: dict[str, list[str]] = Field(default_factory=dict)
    read_timeout_s: float = Field(default=30.0, gt=0)  # a client that takes longer to send its body gets a 408
    max_body_mb: float = Field(default=32.0, gt=0)  # a larger body gets a 413 before it is buffered (1M tokens of text is ~4 MB)
    # /metrics shows tenants and spend: served to a client on the loopback, else only with one of these keys (SHA-256 hex)
    metrics_keys: list[str] = Field(default_factory=list)
    admin_keys: list[str] = Field(default_factory=list)  # SHA-256 hex of keys for the admin API (/admin/keys); none: no admin API
    # Requests of one tenant in flight on a worker (null: no bound): litellm keeps 500 connections to a
    # provider host, and one tenant's burst must not take them all. Past it a request waits, then gets a 429.
    tenant_in_flight: int | None = Field(default=256, ge=1)
    tenant_wait_s: float = Field(default=30.0, ge=0)  # how long a request past tenant_in_flight waits for a slot

    @field_validator("keys")
    @classmethod
    def _digests(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for tenant, digests in value.items():
            for digest in digests:
                if not re.fullmatch(r"[0-9a-f]{64}", digest):
                    raise ValueError(f"gateway.keys.{tenant}: {digest[:8]}... is not a SHA-256 hex digest (64 hex digits)")
        return value

    @field_validator("metrics_keys", "admin_keys")
    @classmethod
    def _metrics_digests(cls, value: list[str]) -> list[str]:
        for digest in value:
            if not re.fullmatch(r"[0-9a-f]{64}", digest):
                raise ValueError(f"gateway: {digest[:8]}... is not a SHA-256 hex digest (64 hex digits)")
        return value


class RateLimit(_Strict):
    """Requests (`rpm`) and tokens (`tpm`, input and output as billed) a tenant may use a minute,
    counted by every instance sharing the ledger."""

    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _some(self) -> RateLimit:
        if self.rpm is None and self.tpm is None:
            raise ValueError("a rate limit names rpm, tpm or both")
        return self


class CacheConfig(_Strict):
    """The response cache (`cache: {}` turns it on): deterministic requests (temperature 0 or a seed)
    answered from the ledger's database (or Redis at `url`), per tenant, for `ttl_s`, at most
    `max_entries` a tenant."""

    ttl_s: float = Field(default=3600.0, gt=0)
    max_entries: int = Field(default=10_000, ge=1)
    url: str | None = None  # redis://127.0.0.1:6379/0: shared by instances on any host (pip install 'tierwise[redis]')


class SessionsConfig(_Strict):
    """Conversations (`session_id=`): a session stays on its tier and moves only up, until idle this long."""

    ttl_s: float = Field(default=3600.0, gt=0)


class TelemetryConfig(_Strict):
    """OpenTelemetry traces (the `otel` extra): exported over OTLP/HTTP to this endpoint when set."""

    otlp_endpoint: str | None = None  # e.g. http://127.0.0.1:4318/v1/traces
    service_name: str = "tierwise"


class EscalationConfig(_Strict):
    """The answer's bar per tier: an answer whose checks score under its tier's bar escalates (a
    check without a score still passes or fails as it says). Tiers not named keep their checks' own
    verdict; the verifier's bar is 0.5 where none is named."""

    bars: dict[str, float] = Field(default_factory=dict)
    verifier: str | None = None  # a learned verifier's JSON file (tierwise train-verifier): scores answers below the top tier

    @field_validator("bars")
    @classmethod
    def _unit(cls, value: dict[str, float]) -> dict[str, float]:
        for tier, bar in value.items():
            if not 0 <= bar <= 1 or math.isnan(bar):
                raise ValueError(f"escalation.bars.{tier}: a bar is a score in [0, 1], got {bar}")
        return value


_QUALITY_95: dict[Literal["quality"], float] = {"quality": 0.95}


class LearningConfig(_Strict):
    """The learning loop: shadow labels bought on a share of requests, feedback, refits."""

    shadow_rate: float = Field(default=0.0, ge=0, le=1)  # share of requests that also buy a label (0: off)
    labels: int | None = Field(default=None, ge=0)  # at most this many shadow labels a period, across instances (None: budget_usd alone)
    tenant_labels: int | None = Field(default=None, ge=0)  # and at most this many bought on one tenant's traffic
    judge: str | None = None  # a configured tier or model that grades answers
    budget_usd: Decimal = Field(default=Decimal(0), ge=0, le=MAX_BUDGET_USD)  # per period, for labels only
    period: Literal["day", "week", "month", "total"] = "day"
    refit_every: int = Field(default=200, ge=0)  # new labels between refits (0: only `tierwise train`)
    target: dict[Literal["quality"], float] = Field(default_factory=lambda: dict(_QUALITY_95))
    store_prompts: bool = False  # keep the messages with a label (else only the classifier's features)
    remember: int = Field(default=10_000, ge=0)  # recent requests kept in memory for feedback
    shadow_max_tokens: int = Field(default=1024, ge=1)  # bounds each shadow answer, so its hold is small
    pickup_s: float = Field(default=10.0, ge=0)  # how often an instance looks for a model another one published
    # Downward labels: a request a stronger tier answered buys only the cheapest tier's answer, graded
    # against the one served; one the cheapest tier answered still buys an upward shadow.
    downward: bool = False
    # Train the answer verifier on the labels (each label keeps its answers' verifier features) and
    # escalate with it once it beats the one in force (escalation.verifier, or none) on the labels.
    verifier: bool = False
    # Spread the period's labels (`labels`, `budget_usd`) over it: no more bought by a time than the
    # share of the period gone by, plus 1/24 of it at once (off: bought as fast as sampled until spent).
    spread: bool = False
    # A downward label whose cheap answer and reference both settle on a final answer (a choice letter
    # or a number) is graded by whether they match, with no judge call; others go to the judge.
    grade_locally: bool = False
    # Off: a tenant's labels refit its own model and verifier, which route only its requests (no tenant's
    # traffic steers another's routing). On: one model for all, from every tenant's labels.
    shared: bool = False

    @model_validator(mode="after")
    def _usable(self) -> LearningConfig:
        if self.shadow_rate > 0 and (not self.judge or self.budget_usd <= 0):
            raise ValueError("learning: shadow_rate > 0 needs a judge (a configured tier or model) and budget_usd > 0")
        quality = self.target.get("quality", 0.95)
        if not 0 < quality <= 1:
            raise ValueError(f"learning.target.quality must be in (0, 1], got {quality}")
        return self
