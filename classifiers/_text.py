"""Pulling the text out of OpenAI-style messages (strings or lists of content parts)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def part_text(content: Any) -> str:
    """The text of one message's content; images, audio and tool parts contribute nothing."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p["text"] for p in content if isinstance(p, Mapping) and isinstance(p.get("text"), str))
    return ""


WINDOW_TURNS = 64  # the last this many messages are read (and system prompts among the first as many)


def split_turns(messages: Sequence[Mapping[str, Any]]) -> tuple[str, str, str, int]:
    """(last user turn, earlier user/assistant turns, system prompt, number of user turns), read from a
    window of the conversation: the cost of scoring does not grow with its length."""
    if len(messages) > 2 * WINDOW_TURNS:
        system_head = [m for m in messages[:WINDOW_TURNS] if m.get("role") in ("system", "developer")]
        messages = [*system_head, *messages[-WINDOW_TURNS:]]
    last = ""
    earlier: list[str] = []
    system: list[str] = []
    n_user = 0
    for m in messages:
        role = m.get("role")
        text = part_text(m.get("content"))
        if role in ("system", "developer"):
            system.append(text)
        elif role == "user":
            if last:
                earlier.append(last)
            last = text
            n_user += 1
        elif text:
            earlier.append(text)
    return last, "\n".join(earlier), "\n".join(system), n_user
