"""Silence litellm's console prints ("Give Feedback / Get Help", "Provider List") for our calls only.

litellm prints straight to stdout unless its module-global `suppress_debug_info` is set, and setting
that would change litellm for every other user in the process. Instead, stdout is wrapped once by a
proxy that drops what is written while the current thread or task is inside `quiet()`; everything
else passes through unchanged.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TextIO

_QUIET: ContextVar[bool] = ContextVar("tierwise_quiet", default=False)


class _QuietStdout:
    """Writes through to the real stdout, except from code running inside quiet()."""

    def __init__(self, inner: TextIO) -> None:
        self._inner = inner

    def write(self, text: str) -> int:
        return len(text) if _QUIET.get() else self._inner.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@contextmanager
def quiet() -> Iterator[None]:
    """litellm's prints inside this block are dropped; other threads' and tasks' output is not."""
    if sys.stdout is not None and not isinstance(sys.stdout, _QuietStdout):  # None: no console at all (pythonw)
        sys.stdout = _QuietStdout(sys.stdout)
    token = _QUIET.set(True)
    try:
        yield
    finally:
        _QUIET.reset(token)
