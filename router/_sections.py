"""The config's smaller sections: the gateway, rate limits, the response cache, sessions,
telemetry and the answer bars. `RouterConfig` (router._config) holds one of each."""

from __future__ import annotations

import math
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


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


