"""The unified LLM client: the one module that imports litellm (lazily), with tenacity retries."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from types import ModuleType
from typing import Any, Protocol

from tenacity import AsyncRetrying, Retrying

from router._config import ModelSpec, RetryConfig
from router._errors import ConfigError
from router._quiet import quiet
from router._retry import TRIES_ATTR, retry_kwargs

_litellm: ModuleType | None = None
# The provider SDK prepares a request in Python with no await, about 0.1 ms a message or part: on the
# event loop a 20,000-message request would stall every other request of the gateway's worker for
# seconds. A request with more parts than this is sent from threads of its own (not the default
# executor's few, which the ledger's work needs).
ON_LOOP_PARTS = 256
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_END = object()
# Output bound when neither the call, the tier nor litellm's model map gives one.
FALLBACK_MAX_OUTPUT = 4096


def litellm_module() -> ModuleType:
    """Import litellm on first use, with the bundled price map (no download at import)."""
    global _litellm
    if _litellm is None:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm

        _litellm = litellm
    return _litellm


def to_decimal(value: Any) -> Decimal:
    """Exact decimal of a price or cost; floats go through repr so 1.5e-07 stays 1.5E-7."""
    if isinstance(value, Decimal):
        return value
    return Decimal(repr(float(value))) if isinstance(value, float) else Decimal(value)


@dataclass(frozen=True)
class Prices:
    """USD per token."""

    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write: Decimal | None = None  # None: writing the cache costs the input price

    def cost(self, tokens_in: int, tokens_out: int, cached_in: int = 0, written_in: int = 0) -> Decimal:
        """The provider's split: input read from its cache, input written to it, the rest, and the output."""
        cached = min(max(cached_in, 0), tokens_in)
        written = min(max(written_in, 0), tokens_in - cached)
        write = self.input if self.cache_write is None else self.cache_write
        return (tokens_in - cached - written) * self.input + cached * self.cache_read + written * write + tokens_out * self.output

    def worst(self, tokens_in: int, tokens_out: int) -> Decimal:
        """The most these tokens can cost: every input token at the dearer of reading fresh and writing the cache."""
        return tokens_in * max(self.input, self.cache_write or self.input) + tokens_out * self.output


@dataclass(frozen=True)
class Usage:
    tokens_in: int
    tokens_out: int
    cached_in: int = 0
    written_in: int = 0  # input tokens written to the provider's cache (Anthropic's cache_creation_input_tokens)


class LLMClient(Protocol):
    """The one seam for I/O: tests replace this (or its transport), never the routing logic."""

    def complete(self, spec: ModelSpec, messages: list[dict[str, Any]], kwargs: Mapping[str, Any]) -> tuple[Any, int]: ...

    def acomplete(self, spec: ModelSpec, messages: list[dict[str, Any]], kwargs: Mapping[str, Any]) -> Awaitable[tuple[Any, int]]: ...

    def prices(self, spec: ModelSpec) -> Prices: ...

    def usage(self, response: Any) -> Usage: ...

    def count_tokens(self, spec: ModelSpec, messages: list[dict[str, Any]], tools: Sequence[Any] | None = None) -> int: ...

    def max_output_tokens(self, spec: ModelSpec) -> int: ...

    def max_input_tokens(self, spec: ModelSpec) -> int | None: ...

    def assemble(self, chunks: list[Any], messages: list[dict[str, Any]]) -> Any: ...


class LiteLLMClient:
    """Calls models through litellm; tenacity is the only retry layer (litellm's and the SDKs' are off)."""

    def __init__(
        self,
        retry: RetryConfig | None = None,
        timeout_s: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
        asleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.retry = retry or RetryConfig()
        self.timeout_s = timeout_s
        self._sleep = sleep
        self._asleep = asleep
        self._prices: dict[tuple[Any, ...], Prices] = {}
        self._info: dict[str, dict[str, Any]] = {}  # litellm's model map does not change while we run
        self._policy: tuple[RetryConfig | None, dict[str, Any]] = (None, {})

    def _retry_policy(self) -> dict[str, Any]:
        """tenacity's arguments for `self.retry`, built once per config (they hold no per-call state)."""
        if self._policy[0] is not self.retry:
            self._policy = (self.retry, retry_kwargs(self.retry))
        return self._policy[1]

    def _params(self, spec: ModelSpec, messages: list[dict[str, Any]], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        params = {**spec.params, **kwargs, "model": spec.model, "messages": messages}
        params["max_retries"] = 0  # the provider SDK's own retries: ours are the only ones
        params.pop("num_retries", None)
        params.setdefault("timeout", self.timeout_s)
        # A parameter one model of a tier does not take (temperature on a reasoning model) is dropped
        # for that model, per call, rather than failing the request; litellm's global stays as it is.
        params.setdefault("drop_params", True)
        if params.get("stream"):  # bill what the provider counts, not our estimate, whatever the caller asked
            params["stream_options"] = {**(params.get("stream_options") or {}), "include_usage": True}
        return params

    # The first try runs outside tenacity: most calls succeed at once, and building tenacity's loop
    # costs about 50 us a call. A failed first try is replayed into tenacity as its attempt 1, so
    # retries, waits, Retry-After and the count of tries are what tenacity alone would give.
    def complete(self, spec: ModelSpec, messages: list[dict[str, Any]], kwargs: Mapping[str, Any]) -> tuple[Any, int]:
        litellm = litellm_module()
        params = self._params(spec, messages, kwargs)
        with quiet():
            try:
                return litellm.completion(**params), 1
            except Exception as exc:  # noqa: BLE001 - tenacity decides below whether it is worth another try
                first: BaseException | None = exc
        retrying = Retrying(sleep=self._sleep, **self._retry_policy())
        try:
            with quiet():
                for attempt in retrying:
                    with attempt:
                        if first is not None:
                            failed, first = first, None
                            raise failed
                        response = litellm.completion(**params)
        except BaseException as exc:
            _count_tries(exc, retrying.statistics)
            raise
        return response, retrying.statistics.get("attempt_number", 1)

    async def acomplete(self, spec: ModelSpec, messages: list[dict[str, Any]], kwargs: Mapping[str, Any]) -> tuple[Any, int]:
        if parts(messages, kwargs) > ON_LOOP_PARTS:
            response, tries = await in_pool(self.complete, spec, messages, kwargs)
            return (ThreadedStream(response) if kwargs.get("stream") else response), tries
        litellm = litellm_module()
        params = self._params(spec, messages, kwargs)
        with quiet():
            try:
                return await litellm.acompletion(**params), 1
            except Exception as exc:  # noqa: BLE001 - tenacity decides below whether it is worth another try
                first: BaseException | None = exc
        retrying = AsyncRetrying(sleep=self._asleep, **self._retry_policy())
        try:
            with quiet():
                async for attempt in retrying:
                    with attempt:
                        if first is not None:
                            failed, first = first, None
                            raise failed
                        response = await litellm.acompletion(**params)
        except BaseException as exc:
            _count_tries(exc, retrying.statistics)
            raise
        return response, retrying.statistics.get("attempt_number", 1)

    def _model_info(self, spec: ModelSpec) -> dict[str, Any]:
        info = self._info.get(spec.model)
        if info is None:
            try:
                info = dict(litellm_module().get_model_info(spec.model))
            except Exception:  # noqa: BLE001 - litellm raises a bare Exception for an unmapped model
                info = {}
            self._info[spec.model] = info
        return info

    def prices(self, spec: ModelSpec) -> Prices:
        """Configured prices, else litellm's price map; a model with neither is a ConfigError."""
        key = (spec.model, spec.input_cost_per_token, spec.output_cost_per_token, spec.cache_read_input_cost_per_token,
               spec.cache_creation_input_cost_per_token)
        cached = self._prices.get(key)
        if cached is not None:
            return cached
        info = {} if spec.input_cost_per_token is not None and spec.output_cost_per_token is not None else self._model_info(spec)
        p_in = spec.input_cost_per_token if spec.input_cost_per_token is not None else info.get("input_cost_per_token")
        p_out = spec.output_cost_per_token if spec.output_cost_per_token is not None else info.get("output_cost_per_token")
        if p_in is None or p_out is None:
            raise ConfigError(
                f"no price known for model {spec.model!r}: set input_cost_per_token and "
                "output_cost_per_token on it in the config (0 for a free local model)"
            )
        p_in, p_out = to_decimal(p_in), to_decimal(p_out)
        cache_read = spec.cache_read_input_cost_per_token if spec.cache_read_input_cost_per_token is not None else info.get(
            "cache_read_input_token_cost")
        cache_write = spec.cache_creation_input_cost_per_token if spec.cache_creation_input_cost_per_token is not None else info.get(
            "cache_creation_input_token_cost")
        prices = Prices(p_in, p_out, to_decimal(cache_read) if cache_read is not None else p_in,
                        to_decimal(cache_write) if cache_write is not None else None)
        self._prices[key] = prices
        return prices

    def usage(self, response: Any) -> Usage:
        usage = getattr(response, "usage", None)
        if usage is None:
            return Usage(0, 0)
        details = getattr(usage, "prompt_tokens_details", None)
        cached = getattr(details, "cached_tokens", None) or getattr(usage, "cache_read_input_tokens", None) or 0
        written = getattr(usage, "cache_creation_input_tokens", None) or 0
        return Usage(int(usage.prompt_tokens or 0), int(usage.completion_tokens or 0), _count(cached), _count(written))

    def count_tokens(self, spec: ModelSpec, messages: list[dict[str, Any]], tools: Sequence[Any] | None = None) -> int:
        litellm = litellm_module()
        return int(litellm.token_counter(model=spec.model, messages=messages, tools=list(tools) if tools else None,
                                         use_default_image_token_count=True))

    def max_output_tokens(self, spec: ModelSpec) -> int:
        info = self._model_info(spec)
        value = info.get("max_output_tokens") or info.get("max_tokens")
        return int(value) if isinstance(value, int) and value > 0 else FALLBACK_MAX_OUTPUT

    def max_input_tokens(self, spec: ModelSpec) -> int | None:
        value = self._model_info(spec).get("max_input_tokens")
        return int(value) if isinstance(value, int) and value > 0 else None

    def assemble(self, chunks: list[Any], messages: list[dict[str, Any]]) -> Any:
        """One ModelResponse (with usage) from streamed chunks; None when nothing arrived."""
        if not chunks:
            return None
        with quiet():
            return litellm_module().stream_chunk_builder(chunks, messages=messages)


def replay_chunks(response: Any) -> list[Any]:
    """A finished answer (a replayed request id, a cache hit) as the chunks of a stream: its text in
    one chunk (tool calls too), then one with the finish reason; the usage (what it was billed) last."""
    litellm = litellm_module()
    choice = (getattr(response, "choices", None) or [None])[0]
    message: Any = getattr(choice, "message", None)
    delta: dict[str, Any] = {"role": "assistant", "content": getattr(message, "content", None)}
    calls = getattr(message, "tool_calls", None) or []
    if calls:
        delta["tool_calls"] = [{"index": i, **(c.model_dump() if hasattr(c, "model_dump") else dict(c))} for i, c in enumerate(calls)]
    base = {"id": getattr(response, "id", None), "model": getattr(response, "model", None)}
    chunks = [litellm.ModelResponseStream(**base, choices=[{"index": 0, "delta": delta, "finish_reason": None}]),
              litellm.ModelResponseStream(**base, choices=[{"index": 0, "delta": {}, "finish_reason": getattr(choice, "finish_reason", None)
                                                            or "stop"}])]
    usage = getattr(response, "usage", None)
    if usage is not None:
        chunks.append(litellm.ModelResponseStream(**base, choices=[], usage=usage))
    return chunks


def parts(messages: list[dict[str, Any]], kwargs: Mapping[str, Any]) -> int:
    """How many messages, content parts, tool calls and tools the provider SDK walks to send a request."""
    found = len(messages) + len(kwargs.get("tools") or ())
    for m in messages:
        for key in ("content", "tool_calls"):
            value = m.get(key)
            found += len(value) if isinstance(value, list) else 0
    return found


async def in_pool(fn: Callable[..., Any], *args: Any) -> Any:
    """`fn(*args)` on the large requests' threads, in the caller's context (quiet(), tracing spans)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="tierwise-large")
    return await asyncio.get_running_loop().run_in_executor(_pool, functools.partial(contextvars.copy_context().run, fn, *args))


class ThreadedStream:
    """A provider's stream opened from a thread (a large request), read chunk by chunk from threads."""

    def __init__(self, chunks: Any) -> None:
        self._chunks = chunks
        self._iter = iter(chunks)

    def __aiter__(self) -> ThreadedStream:
        return self

    async def __anext__(self) -> Any:
        chunk = await in_pool(next, self._iter, _END)
        if chunk is _END:
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        close = getattr(self._chunks, "close", None)
        if callable(close):
            await in_pool(close)


def _count(value: Any) -> int:
    """A token count a provider reported; anything else (a string, a float, garbage) counts 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def missing_keys(model: str) -> list[str]:
    """The environment variables litellm says this model's provider reads its key from, if unset."""
    try:
        found = litellm_module().validate_environment(model=model)
    except Exception:  # noqa: BLE001 - only a hint for an error message; litellm raises bare errors
        return []
    keys = found.get("missing_keys") if isinstance(found, dict) else None
    return [str(k) for k in keys] if isinstance(keys, list) else []


def _count_tries(exc: BaseException, statistics: Mapping[str, Any]) -> None:
    """Record on the exception how many requests the provider received, so the attempt says so."""
    try:
        setattr(exc, TRIES_ATTR, int(statistics.get("attempt_number", 1)))
    except (AttributeError, TypeError):  # an exception type with __slots__: the count stays 1
        pass


