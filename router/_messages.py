"""Validation of OpenAI-style chat messages, before anything is scored or billed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from router._errors import InvalidMessagesError, InvalidRequestError

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


MAX_NAME = 256
_PLAIN = frozenset({"system", "developer", "user", "assistant"})
MAX_DEPTH = 32  # nesting of lists and dicts in messages and parameters: JSON schemas need a few levels, not thousands


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


def check_session(value: Any) -> str | None:
    """A session id (None: no session): a name, as tenants are, of at most 256 bytes, without control characters."""
    if value is None:
        return None
    check_name("session_id", value)
    if len(value.encode("utf-8")) > MAX_NAME or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidRequestError("session_id must be at most 256 bytes of text without control characters")
    return str(value)


def validate_messages(messages: Any) -> list[dict[str, Any]]:
    """Return the messages as a list of dicts, or raise InvalidMessagesError naming the problem."""
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise InvalidMessagesError(
            f"messages must be a list of {{'role': ..., 'content': ...}} dicts, got {type(messages).__name__}"
        )
    if not messages:
        raise InvalidMessagesError("messages is empty: at least one message is needed")
    out: list[dict[str, Any]] = []
    plain = True  # every turn {role, content: text}: two levels deep, no walk needed
    for i, msg in enumerate(messages):
        if type(msg) is dict and len(msg) == 2 and type(msg.get("content")) is str and type(msg.get("role")) is str and msg["role"] in _PLAIN:
            # The common turn, {role, content: text}: checked here without the general walk.
            if not _text_ok(msg["content"]) or (msg["role"] == "user" and not msg["content"].strip()):
                _check_content(i, msg)  # raises the precise error
            out.append(dict(msg))
            continue
        plain = False
        if isinstance(msg, Mapping):
            m = dict(msg)
        elif hasattr(msg, "model_dump"):  # litellm / openai Message objects
            m = msg.model_dump(exclude_none=True)
        else:
            raise InvalidMessagesError(f"messages[{i}] must be a dict, got {type(msg).__name__}")
        role = m.get("role")
        if not isinstance(role, str) or role not in ROLES:
            raise InvalidMessagesError(f"messages[{i}] has role {short(role)}; expected one of {sorted(ROLES)}")
        _check_fields(i, m)
        _check_content(i, m)
        out.append(m)
    if not plain and nesting(out) > MAX_DEPTH:
        raise InvalidMessagesError(f"messages are nested more than {MAX_DEPTH} levels deep")
    if not any(m["role"] in ("user", "tool", "function") for m in out):
        raise InvalidMessagesError("messages has no user message")
    return out


def short(value: Any, limit: int = 60) -> str:
    """A value's repr for an error message, cut to `limit` characters (a hostile value can be huge)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _text_ok(value: str) -> bool:
    """Text a provider (and a database) can take: valid Unicode, no lone surrogate."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def nesting(value: Any) -> int:
    """How deeply lists and dicts nest in `value`, walked without recursion (a hostile depth cannot
    exhaust the stack), each container once; stops counting past MAX_DEPTH + 1. Strings and numbers
    are skipped by type, so 10,000 plain turns cost a few milliseconds."""
    if not _container(value):
        return 0
    deepest, todo, seen = 0, [(value, 1)], set()
    while todo:
        item, depth = todo.pop()
        if id(item) in seen:  # one object met again (a YAML alias): walked once, not once per path
            continue
        seen.add(id(item))
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            return depth
        for child in item.values() if isinstance(item, Mapping) else item:
            kind = type(child)
            if kind in _LEAVES:
                continue
            if kind is dict and all(type(v) in _LEAVES for v in child.values()):
                deepest = max(deepest, depth + 1)  # a flat dict (a plain turn): one level, nothing under it
            elif _container(child):
                todo.append((child, depth + 1))
    return deepest


_LEAVES = frozenset({str, int, float, bool, type(None), bytes})


def _container(value: Any) -> bool:
    return isinstance(value, (Mapping, list, tuple))


def _check_fields(i: int, m: dict[str, Any]) -> None:
    for key in m:
        if not isinstance(key, str):
            raise InvalidMessagesError(f"messages[{i}] has a key that is not a string: {short(key)}")
    for key in ("name", "tool_call_id"):
        if key in m and m[key] is not None and not (isinstance(m[key], str) and _text_ok(m[key])):
            raise InvalidMessagesError(f"messages[{i}].{key} must be a string, got {type(m[key]).__name__}")
    calls = m.get("tool_calls")
    if calls is not None and not (isinstance(calls, list) and all(isinstance(c, Mapping) for c in calls)):
        raise InvalidMessagesError(f"messages[{i}].tool_calls must be a list of objects")


def _check_part(i: int, j: int, part: Any) -> None:
    if not isinstance(part, Mapping) or not isinstance(part.get("type"), str):
        raise InvalidMessagesError(f"messages[{i}].content[{j}] must be a dict with a 'type'")
    if part["type"] == "text":
        text = part.get("text")
        if not isinstance(text, str) or not _text_ok(text):
            raise InvalidMessagesError(f"messages[{i}].content[{j}] is a text part whose 'text' is not a string of valid Unicode")
    elif part["type"] == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, Mapping) else image
        if not isinstance(url, str) or not _text_ok(url):
            raise InvalidMessagesError(f"messages[{i}].content[{j}] is an image part without an image_url.url string")


def _check_content(i: int, m: dict[str, Any]) -> None:
    content = m.get("content")
    if content is None:
        # An assistant turn that only calls tools legitimately has no content.
        if m["role"] == "assistant" and (m.get("tool_calls") or m.get("function_call")):
            return
        raise InvalidMessagesError(f"messages[{i}] ({m['role']}) has no content")
    if isinstance(content, str):
        if not _text_ok(content):
            raise InvalidMessagesError(f"messages[{i}].content is not valid Unicode text (a lone surrogate)")
        if not content.strip() and m["role"] == "user":
            raise InvalidMessagesError(f"messages[{i}] (user) has empty content")
        return
    if isinstance(content, list):
        if not content:
            raise InvalidMessagesError(f"messages[{i}] has an empty content list")
        for j, part in enumerate(content):
            _check_part(i, j, part)
        return
    raise InvalidMessagesError(
        f"messages[{i}].content must be a string or a list of parts, got {type(content).__name__}"
    )



def fingerprint(messages: list[dict[str, Any]], kwargs: Mapping[str, Any]) -> str:
    """What a request id stands for: its messages and parameters. The same id with another
    fingerprint is a conflict, not a replay."""
    text = json.dumps({"messages": messages, "kwargs": {k: v for k, v in kwargs.items() if k != "stream"}}, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
