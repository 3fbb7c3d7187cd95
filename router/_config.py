"""Configuration: pydantic models loadable from a dict, a YAML/TOML file or TIERWISE_CONFIG."""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import tomllib
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_serializer, field_validator, model_validator

from router._errors import ConfigError
from router._messages import MAX_DEPTH, nesting
from router._secrets import is_secret
from router._sections import (
    MAX_BUDGET_USD,
    CacheConfig,
    EscalationConfig,
    GatewayConfig,
    LearningConfig,
    RateLimit,
    SessionsConfig,
    TelemetryConfig,
    _Strict,
)

# Parameter names whose values are credentials: never logged, printed or stored.
_PRICE_FIELDS = ("input_cost_per_token", "output_cost_per_token", "cache_read_input_cost_per_token", "cache_creation_input_cost_per_token")

# Three current models from litellm's price map: one provider, one API key.
DEFAULT_TIERS: list[dict[str, Any]] = [
    {"name": "small", "models": ["gpt-5-nano"]},
    {"name": "flash", "models": ["gpt-5-mini"]},
    {"name": "frontier", "models": ["gpt-5"]},
]
# Calibrated to 95% of always-top quality on the permissive sets' dev rows (bench/classifier.py prints them).
DEFAULT_THRESHOLDS = {1: [], 2: [0.289], 3: [0.135, 0.508]}


# Bounds that keep every sum of money inside the ledger's 64-bit nano-dollars (MAX_BUDGET_USD: _sections).
MAX_PRICE_PER_TOKEN = Decimal(1)
# litellm parameters a flat model entry may carry (completion()'s own, and the auth and location
# keys of its providers); anything else must be written under `params:`.
MODEL_PARAMS = frozenset(
    ["api_base", "base_url", "api_key", "api_version", "organization", "custom_llm_provider", "deployment_id", "timeout", "headers", "extra_headers", "extra_body", "temperature", "top_p", "n", "stop", "max_tokens", "max_completion_tokens", "presence_penalty", "frequency_penalty", "logit_bias", "user", "reasoning_effort", "verbosity", "response_format", "seed", "tools", "tool_choice", "logprobs", "top_logprobs", "parallel_tool_calls", "service_tier", "store", "prompt_cache_key", "thinking", "drop_params", "additional_drop_params", "allowed_openai_params", "metadata", "num_retries", "max_retries", "mock_response", "stream_options", "modalities", "audio", "prediction", "web_search_options", "aws_access_key_id", "aws_secret_access_key", "aws_session_token", "aws_region_name", "aws_profile_name", "aws_role_name", "aws_session_name", "aws_web_identity_token", "aws_bedrock_runtime_endpoint", "aws_sts_endpoint", "vertex_project", "vertex_location", "vertex_credentials", "azure_ad_token", "azure_ad_token_provider", "azure_username", "azure_password", "tenant_id", "client_id", "client_secret", "region_name", "project", "location", "litellm_credential_name", "api_type", "input_cost_per_second", "output_cost_per_second"]
)
def data_home() -> str:
    """Where tierwise keeps its own files: `$TIERWISE_HOME`, else `$XDG_DATA_HOME/tierwise`, else
    `~/.local/share/tierwise` (the default ledger, the PostgreSQL ledger's journal)."""
    return os.environ.get("TIERWISE_HOME") or str(Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "tierwise")


_MAX_CONFIG_VALUES = 100_000  # a YAML alias bomb expands past this: refused before it costs memory


class ModelSpec(_Strict):
    """One deployable model: a litellm model string plus litellm parameters and optional prices.

    In the flat form (`{model: ..., api_base: ..., api_key: ...}`) every key must be a litellm
    parameter tierwise knows: a typo such as `api_bsae` would otherwise send the key to the
    provider's public endpoint. Anything else goes under `params:` explicitly.
    """

    model: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict, repr=False)
    input_cost_per_token: Decimal | None = Field(default=None, ge=0, le=MAX_PRICE_PER_TOKEN)
    output_cost_per_token: Decimal | None = Field(default=None, ge=0, le=MAX_PRICE_PER_TOKEN)
    # Cached input read (and written, where a provider charges for it); unset: litellm's map, else the input price.
    cache_read_input_cost_per_token: Decimal | None = Field(default=None, ge=0, le=MAX_PRICE_PER_TOKEN)
    cache_creation_input_cost_per_token: Decimal | None = Field(default=None, ge=0, le=MAX_PRICE_PER_TOKEN)

    @model_validator(mode="before")
    @classmethod
    def _from_string_or_mapping(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"model": value}
        if isinstance(value, Mapping) and "params" not in value:
            known = {"model", *_PRICE_FIELDS}
            for key in value:
                if key not in known and key not in MODEL_PARAMS:
                    close = difflib.get_close_matches(str(key), [*MODEL_PARAMS, *known], n=1)
                    hint = f"; did you mean {close[0]!r}?" if close else "; put provider-specific parameters under params:"
                    raise ValueError(f"unknown model parameter {key!r}{hint}")
            out = {k: v for k, v in value.items() if k in known}
            out["params"] = {k: v for k, v in value.items() if k not in known}
            return out
        return value

    @field_serializer("params")
    def _masked(self, params: dict[str, Any]) -> dict[str, Any]:
        # model_dump() / model_dump_json() never carry a credential.
        return self.safe_params()

    @field_validator(*_PRICE_FIELDS, mode="before")
    @classmethod
    def _exact_price(cls, value: Any) -> Any:
        # Floats go through str() so 1.5e-07 becomes Decimal("1.5E-7"), not its binary expansion.
        if isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError("price must be finite")
            return Decimal(repr(value))
        return value

    def safe_params(self) -> dict[str, Any]:
        """The parameters with every credential masked, for logs and repr."""
        return {k: ("***" if is_secret(k) else v) for k, v in self.params.items()}

    def __repr__(self) -> str:
        return f"ModelSpec(model={self.model!r}, params={self.safe_params()!r})"

    __str__ = __repr__


class TierConfig(_Strict):
    """A tier: a name and its models in fallback order."""

    name: str = Field(min_length=1)
    models: list[ModelSpec] = Field(min_length=1)
    max_output_tokens: int | None = Field(default=None, gt=0)


class TenantBudget(_Strict):
    """A spending cap for one tenant and the period it resets over."""

    budget_usd: Decimal = Field(ge=0, le=MAX_BUDGET_USD)
    period: Literal["day", "week", "month", "total"] = "month"

    @field_validator("budget_usd", mode="before")
    @classmethod
    def _finite(cls, value: Any) -> Any:
        if isinstance(value, float):
            value = Decimal(repr(value))
        if isinstance(value, Decimal) and not value.is_finite():
            raise ValueError("budget_usd must be a finite number")
        return value


class RetryConfig(_Strict):
    """How transient provider errors are retried before falling back to the next model."""

    attempts: int = Field(default=3, ge=1, le=20)
    initial_wait_s: float = Field(default=0.5, ge=0)
    max_wait_s: float = Field(default=20.0, ge=0)
    retry_after_cap_s: float = Field(default=60.0, ge=0)


LEARNING_TENANT = "tierwise-learning"  # the ledger tenant that shadow and judge calls are billed to


class RouterConfig(_Strict):
    """Everything a Router needs; every field has a default."""

    tiers: list[TierConfig] = Field(default_factory=lambda: [TierConfig.model_validate(t) for t in DEFAULT_TIERS])
    thresholds: list[float] | None = None
    tenants: dict[str, TenantBudget] = Field(default_factory=dict)
    default_budget: TenantBudget | None = None
    ledger: str | None = None  # None: ledger.db in the per-user data directory (see ledger_url())
    ledger_flush_s: float = Field(default=0.05, ge=0, le=60)  # how long a bill may wait to be committed with others
    # process: a bill survives a killed process; os: also a power loss, but for bills younger than ledger_flush_s
    ledger_durability: Literal["process", "os"] = "process"
    classifier: str | None = None
    checks: list[str] = Field(default_factory=lambda: ["non_empty"])
    max_escalations: int = Field(default=2, ge=0)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    timeout_s: float = Field(default=120.0, gt=0)
    log_content: bool = False
    check_streams: bool = False
    timezone: str = "UTC"
    downgrade: dict[float, int] = Field(default_factory=dict)
    # How long a request the budget refuses waits for live holds to settle; None: up to its deadline
    # (timeout_s), so a slow machine never turns "held by others" into a refusal.
    budget_wait_s: float | None = Field(default=None, ge=0)
    auth_errors: Literal["raise", "fallback"] = "raise"  # a refused or missing key: raise at once, or try the next model
    gateway: GatewayConfig = Field(default_factory=GatewayConfig)
    escalation: EscalationConfig = Field(default_factory=EscalationConfig)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    sessions: SessionsConfig = Field(default_factory=SessionsConfig)
    cache: CacheConfig | None = None
    rate_limits: dict[str, RateLimit] = Field(default_factory=dict)  # tenant -> limit; "*" for every tenant not listed
    learning: LearningConfig = Field(default_factory=LearningConfig)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("downgrade")
    @classmethod
    def _downgrade_rules(cls, value: dict[float, int]) -> dict[float, int]:
        for share, closed in value.items():
            if not 0 < share <= 1 or closed < 0:
                raise ValueError("downgrade maps a remaining-budget share in (0, 1] to a number of top tiers to close")
        return value

    @field_validator("tiers", mode="before")
    @classmethod
    def _tiers_mapping(cls, value: Any) -> Any:
        # Also accept {small: [models], flash: [...]}: mappings keep their order.
        if isinstance(value, Mapping):
            return [{"name": name, "models": models} for name, models in value.items()]
        return value

    @model_validator(mode="after")
    def _check_consistency(self) -> RouterConfig:
        names = [t.name for t in self.tiers]
        if not names:
            raise ValueError("tiers: at least one tier is needed")
        if len(set(names)) != len(names):
            raise ValueError(f"tiers: names must be unique, got {names}")
        if self.thresholds is not None:
            th = self.thresholds
            if len(th) != len(names) - 1:
                raise ValueError(f"thresholds: {len(names)} tiers need {len(names) - 1} thresholds, got {len(th)}")
            if any(not (0.0 <= x <= 1.0) or math.isnan(x) for x in th) or th != sorted(th):
                raise ValueError(f"thresholds: must be ascending numbers in [0, 1], got {th}")
        judge = self.learning.judge
        if judge and judge not in names and all(judge != spec.model for t in self.tiers for spec in t.models):
            raise ValueError(f"learning.judge: {judge!r} is neither a tier ({', '.join(names)}) nor a configured model")
        unknown = set(self.escalation.bars) - set(names)
        if unknown:
            raise ValueError(f"escalation.bars: {sorted(unknown)} are not tiers ({', '.join(names)})")
        for section, names_of in (("tenants", self.tenants), ("gateway.keys", self.gateway.keys), ("rate_limits", self.rate_limits)):
            if LEARNING_TENANT in names_of:
                raise ValueError(f"{section}: {LEARNING_TENANT!r} is reserved for the learning budget (learning.budget_usd)")
        return self

    @property
    def learning_on(self) -> bool:
        """Whether the config has a `learning:` section: without one, no label, no thread, no prompt word is kept."""
        return "learning" in self.model_fields_set

    def effective_thresholds(self) -> list[float]:
        """The configured thresholds, or evenly spread ones for the number of tiers."""
        if self.thresholds is not None:
            return list(self.thresholds)
        n = len(self.tiers)
        return DEFAULT_THRESHOLDS.get(n, [round(i / n, 4) for i in range(1, n)])

    def ledger_url(self) -> str:
        """The ledger's URL: the configured one, else `$TIERWISE_HOME/ledger.db`, else the per-user data
        directory (`$XDG_DATA_HOME/tierwise`, by default `~/.local/share/tierwise`), created if needed."""
        if self.ledger:
            return self.ledger
        home = data_home()
        try:
            Path(home).mkdir(mode=0o700, parents=True, exist_ok=True)  # stored answers and bills: the user's alone
        except OSError as exc:
            raise ConfigError(f"cannot create the ledger directory {home}: {exc.strerror}; set ledger: in the config") from None
        return f"sqlite:///{Path(home).resolve() / 'ledger.db'}"

    def budget_for(self, tenant: str) -> TenantBudget | None:
        if tenant == LEARNING_TENANT:  # labels never take a tenant's money: their own cap, even when 0
            return TenantBudget(budget_usd=self.learning.budget_usd, period=self.learning.period)
        return self.tenants.get(tenant, self.default_budget)

    # ---- loaders -------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RouterConfig:
        """Validate a mapping; every problem is reported in one ConfigError.

        `${VAR}` (or `${VAR:-default}`) in a string value is replaced by that environment variable.
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"configuration must be a mapping, got {type(data).__name__}")
        if nesting(data) > MAX_DEPTH:
            raise ConfigError(f"the config nests more than {MAX_DEPTH} levels deep: refused")
        try:
            return cls.model_validate(interpolate(dict(data)))
        except ValidationError as exc:
            raise ConfigError(_describe(exc)) from None

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> RouterConfig:
        """Load a YAML (.yaml/.yml), TOML (.toml) or JSON (.json) file."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config file {p}: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"config file {p} is not UTF-8 text (byte {exc.start}): save it as UTF-8") from None
        suffix = p.suffix.lower()
        try:
            if suffix == ".toml":
                data: Any = tomllib.loads(text)
            elif suffix == ".json":
                data = json.loads(text)
            elif suffix in (".yaml", ".yml"):
                import yaml

                data = yaml.safe_load(text) or {}
            else:
                raise ConfigError(f"config file {p} must end in .yaml, .yml, .toml or .json")
        except (ValueError, ImportError) as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"config file {p} is not valid {suffix[1:].upper()}: {exc}") from None
        except RecursionError:
            raise ConfigError(f"config file {p} nests too deeply to read: refused") from None
        except Exception as exc:  # yaml.YAMLError does not derive from ValueError
            if type(exc).__module__.startswith("yaml"):
                raise ConfigError(f"config file {p} is not valid YAML: {exc}") from None
            raise
        return cls.from_dict(data)

    @classmethod
    def from_env(cls) -> RouterConfig:
        """The file named by TIERWISE_CONFIG, or the defaults when it is unset."""
        path = os.environ.get("TIERWISE_CONFIG")
        return cls.from_file(path) if path else cls()


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def interpolate(value: Any, where: str = "config", budget: list[int] | None = None) -> Any:
    """`${VAR}` and `${VAR:-default}` in string values, from the environment; an unset one without a
    default is a ConfigError naming the variable (never its value). A config that expands to more
    than 100,000 values (a YAML alias bomb) is refused."""
    budget = [_MAX_CONFIG_VALUES] if budget is None else budget
    budget[0] -= 1
    if budget[0] < 0:
        raise ConfigError("the config expands to more than 100,000 values (YAML aliases?): refused")
    if isinstance(value, str):

        def repl(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            found = os.environ.get(name, default)
            if found is None:
                raise ConfigError(f"{where}: environment variable {name} is not set")
            return found

        return _ENV_REF.sub(repl, value)
    if isinstance(value, Mapping):
        return {k: interpolate(v, f"{where}.{k}" if where != "config" else str(k), budget) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, f"{where}[{i}]", budget) for i, v in enumerate(value)]
    return value


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err["loc"] if not str(part).startswith("function-")) or "config"
        msg = str(err["msg"]).removeprefix("Value error, ")
        lines.append(msg if where == "config" else f"{where}: {msg}")
    return "invalid tierwise config: " + "; ".join(lines)
