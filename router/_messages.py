"""Validation of OpenAI-style chat messages, before anything is scored or billed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from router._errors import InvalidMessagesError, InvalidRequestError

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


MAX_NAME = 256
MAX_OUTPUT_TOKENS = 10_000_000  # above any model's output limit: a bigger bound is a mistake


def check_name(field: str, value: Any) -> None:
    """A tenant or request id: a non-empty string of at most 256 characters that a database can
    store as it is (no NUL, no lone surrogate), checked before anything is called or billed."""
    if not isinstance(value, str) or not value:
        raise InvalidRequestError(f"{field} must be a non-empty string")
    if len(value) > MAX_NAME:
        raise InvalidRequestError(f"{field} is {len(value)} characters long; at most {MAX_NAME}")
    if "\x00" in value:
        raise InvalidRequestError(f"{field} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequestError(f"{field} is not valid Unicode text (a lone surrogate)") from None


def check_token_bound(field: str, value: Any) -> None:
    """max_tokens and max_completion_tokens bound the budget hold: a whole number from 1 to 10^7."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_OUTPUT_TOKENS:
        raise InvalidRequestError(f"{field} must be a whole number from 1 to {MAX_OUTPUT_TOKENS:,}, got {value!r}")


def validate_messages(messages: Any) -> list[dict[str, Any]]:
    """Return the messages as a list of dicts, or raise InvalidMessagesError naming the problem."""
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise InvalidMessagesError(
            f"messages must be a list of {{'role': ..., 'content': ...}} dicts, got {type(messages).__name__}"
        )
    if not messages:
        raise InvalidMessagesError("messages is empty: at least one message is needed")
    out: list[dict[str, Any]] = []
    for i, msg in enumerate(messages):
        if isinstance(msg, Mapping):
            m = dict(msg)
        elif hasattr(msg, "model_dump"):  # litellm / openai Message objects
            m = msg.model_dump(exclude_none=True)
        else:
            raise InvalidMessagesError(f"messages[{i}] must be a dict, got {type(msg).__name__}")
        role = m.get("role")
        if role not in ROLES:
            raise InvalidMessagesError(f"messages[{i}] has role {role!r}; expected one of {sorted(ROLES)}")
        _check_content(i, m)
        out.append(m)
    if not any(m["role"] in ("user", "tool", "function") for m in out):
        raise InvalidMessagesError("messages has no user message")
    return out


def _check_content(i: int, m: dict[str, Any]) -> None:
    content = m.get("content")
    if content is None:
        # An assistant turn that only calls tools legitimately has no content.
        if m["role"] == "assistant" and (m.get("tool_calls") or m.get("function_call")):
            return
        raise InvalidMessagesError(f"messages[{i}] ({m['role']}) has no content")
    if isinstance(content, str):
        if not content.strip() and m["role"] == "user":
            raise InvalidMessagesError(f"messages[{i}] (user) has empty content")
        return
    if isinstance(content, list):
        if not content:
            raise InvalidMessagesError(f"messages[{i}] has an empty content list")
        for j, part in enumerate(content):
            if not isinstance(part, Mapping) or not isinstance(part.get("type"), str):
                raise InvalidMessagesError(f"messages[{i}].content[{j}] must be a dict with a 'type'")
        return
    raise InvalidMessagesError(
        f"messages[{i}].content must be a string or a list of parts, got {type(content).__name__}"
    )



def fingerprint(messages: list[dict[str, Any]], kwargs: Mapping[str, Any]) -> str:
    """What a request id stands for: its messages and parameters. The same id with another
    fingerprint is a conflict, not a replay."""
    text = json.dumps({"messages": messages, "kwargs": {k: v for k, v in kwargs.items() if k != "stream"}}, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
