"""What a caller may send with a request: an allow-list of the parameters that change the answer.

Endpoints, credentials, headers, routing and billing come only from the config: a caller's
`api_base` would send the configured provider key to any host. Each value is checked for its type
here, so a bad one is an InvalidRequestError before anything is held or called.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from router._errors import InvalidRequestError
from router._messages import MAX_DEPTH, nesting, short

MAX_OUTPUT_TOKENS = 10_000_000  # above any model's output limit: a bigger bound is a mistake
MAX_N = 16  # choices per call: each is paid for, and held for
_Check = Callable[[Any], bool]


def _number(lo: float, hi: float) -> _Check:
    return lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and lo <= v <= hi


def _whole(lo: int, hi: int) -> _Check:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


# What a value must be, for the error message of a parameter that is not plain.
_EXPECTED = {
    "max_tokens": f"a whole number from 1 to {MAX_OUTPUT_TOKENS:,}", "max_completion_tokens": f"a whole number from 1 to {MAX_OUTPUT_TOKENS:,}",
    "n": f"a whole number from 1 to {MAX_N}", "temperature": "a number from 0 to 2", "top_p": "a number from 0 to 1",
    "stop": "a string or a list of up to 16 strings", "tools": "a list of objects", "functions": "a list of objects",
    "stream_options": "an object with include_usage (true or false)", "user": "a string of at most 256 characters",
}


def _text(limit: int) -> _Check:
    return lambda v: isinstance(v, str) and len(v) <= limit and _encodable(v)


def _encodable(v: str) -> bool:
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in v


def _dicts(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, Mapping) for x in v)


def _stop(v: Any) -> bool:
    return v is None or _text(4096)(v) or (isinstance(v, list) and len(v) <= 16 and all(_text(4096)(x) for x in v))


def _choice(v: Any) -> bool:
    return _text(64)(v) or isinstance(v, Mapping)


def _bias(v: Any) -> bool:
    return isinstance(v, Mapping) and len(v) <= 1024 and all(isinstance(k, str) and _number(-100, 100)(x) for k, x in v.items())


def _stream_options(v: Any) -> bool:
    return isinstance(v, Mapping) and set(v) <= {"include_usage", "include_obfuscation"} and all(isinstance(x, bool) for x in v.values())


def _flag(v: Any) -> bool:
    return isinstance(v, bool)


# OpenAI's chat parameters that shape the answer, each with the values it takes.
ANSWER_PARAMS: dict[str, _Check] = {
    "temperature": _number(0, 2),
    "top_p": _number(0, 1),
    "max_tokens": _whole(1, MAX_OUTPUT_TOKENS),
    "max_completion_tokens": _whole(1, MAX_OUTPUT_TOKENS),
    "stop": _stop,
    "tools": _dicts,
    "tool_choice": _choice,
    "parallel_tool_calls": _flag,
    "functions": _dicts,
    "function_call": _choice,
    "response_format": lambda v: isinstance(v, Mapping) or (isinstance(v, type) and hasattr(v, "model_json_schema")),  # or a pydantic model
    "seed": _whole(-(2**63), 2**63 - 1),
    "n": _whole(1, MAX_N),
    "logprobs": _flag,
    "top_logprobs": _whole(0, 20),
    "user": _text(256),
    "stream": _flag,
    "stream_options": _stream_options,
    "presence_penalty": _number(-2, 2),
    "frequency_penalty": _number(-2, 2),
    "logit_bias": _bias,
    "reasoning_effort": _text(16),
    "verbosity": _text(16),
    "modalities": lambda v: isinstance(v, list) and all(_text(16)(x) for x in v),
    "prompt_cache_key": _text(256),  # OpenAI's prompt-cache routing hint (a session sets one of its own)
}
# The SDK's caller is the operator's own code: it may also answer offline through litellm's mock.
SDK_PARAMS: dict[str, _Check] = {**ANSWER_PARAMS, "mock_response": lambda v: True, "mock_delay": _number(0, 3600)}
_WHY = {
    "api_base": "the endpoint", "base_url": "the endpoint", "api_key": "a credential", "api_version": "the endpoint",
    "headers": "headers", "extra_headers": "headers", "extra_body": "what is sent", "custom_llm_provider": "routing",
    "input_cost_per_token": "billing", "output_cost_per_token": "billing", "service_tier": "billing",
    "tenant": "billing: the API key names the tenant", "request_id": "the Idempotency-Key header",
}


def allowed_params(params: Mapping[str, Any], allowed: Mapping[str, _Check] = SDK_PARAMS) -> dict[str, Any]:
    """The parameters as given when every one is allowed and well typed, else InvalidRequestError."""
    for name, value in params.items():
        check = allowed.get(name) if isinstance(name, str) else None
        if check is None:
            what = _WHY.get(name, "not a parameter tierwise passes on") if isinstance(name, str) else "not a name"
            raise InvalidRequestError(
                f"parameter {name!r} cannot be set per request ({what}); set it on the model in the config, or send one of: "
                + ", ".join(sorted(allowed))
            )
        if value is not None and not check(value):
            expected = f" (expected {_EXPECTED[name]})" if name in _EXPECTED else ""
            raise InvalidRequestError(f"parameter {name!r} has an invalid value: {short(value, 80)}{expected}")
    if nesting(dict(params)) > MAX_DEPTH:
        raise InvalidRequestError(f"parameters are nested more than {MAX_DEPTH} levels deep")
    return dict(params)

