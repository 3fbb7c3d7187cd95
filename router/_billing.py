"""What an attempt may cost before it is made (the hold), and what it is billed after.

The bill is bounded by the hold: a provider that reports more than the worst case we held for (a
reply claiming 10^9 output tokens) is billed the hold, and the route says so. A reply without usage
is billed on an estimate, never $0; a malformed reply is billed the input it was sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import repeat
from typing import Any

from router._client import LLMClient
from router._config import ModelSpec
from router._errors import BudgetState
from router._types import AttemptOutcome
from router.checks import answer_text
from router.ledger import Reservation

# litellm's counts differ from providers' by a few percent (tokenizers, message framing): the hold
# adds this much so that an honest bill fits under it.
INPUT_MARGIN = Decimal("1.15")
PER_MESSAGE_TOKENS = 8


@dataclass(frozen=True)
class Bill:
    tokens_in: int
    tokens_out: int
    cost_usd: Decimal
    note: str = ""  # why the bill is not the provider's own figures, for the attempt's reason
    cached_in: int = 0  # input tokens the provider served from its prompt cache


def byte_bound(messages: list[dict[str, Any]], tools: Any) -> int | None:
    """An upper bound of the input tokens without a tokenizer: a byte-level BPE token holds at least
    one byte, so the UTF-8 length bounds the count. None when a part is not text (an image is counted
    by litellm's rule, not by its URL's length). Written with map() so that C walks 10,000 turns."""
    contents = list(map(dict.get, messages, repeat("content")))
    if not set(map(type, contents)) <= {str, type(None)}:
        return None
    text = "".join(filter(None, contents))
    total = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    if sum(map(len, messages)) > 2 * len(messages):  # tool calls, names: sent, so billed (most hold a role and a content only)
        total += sum(len(json.dumps({k: v for k, v in m.items() if k not in ("role", "content")}, default=str)) for m in messages if len(m) > 2)
    if tools:
        total += len(json.dumps(tools, default=str))
    return total


UNBOUNDED_OUTPUT_TOKENS = 4096  # a request without max_tokens is held for this much output against a tpm


def most_tokens(messages: list[dict[str, Any]], kwargs: Mapping[str, Any]) -> int:
    """The most tokens a request can use, known before a model is chosen (for tokens-a-minute holds):
    its input's byte bound (or its JSON's length) and framing, plus max_tokens (4096 when unset) for
    each of its n answers."""
    bound = byte_bound(messages, kwargs.get("tools"))
    if bound is None:
        bound = len(json.dumps(messages, default=str))
    out = kwargs.get("max_tokens") or kwargs.get("max_completion_tokens") or UNBOUNDED_OUTPUT_TOKENS
    return bound + PER_MESSAGE_TOKENS * len(messages) + int(out) * int(kwargs.get("n") or 1)


def input_tokens(client: LLMClient, spec: ModelSpec, messages: list[dict[str, Any]], kwargs: Mapping[str, Any], exact: bool = False) -> int:
    """The request's input as the provider may count it: messages, tool schemas and a response
    schema (all sent, all billed), plus a margin for the provider's own tokenizer. Unless `exact`,
    the byte bound stands in for the count: no tokenizer on the hot path, a bounded cost whatever
    the request's size."""
    tools = kwargs.get("tools")
    tools = tools if isinstance(tools, Sequence) else None
    bound = None if exact else byte_bound(messages, tools)
    counted = bound if bound is not None else int(client.count_tokens(spec, messages, tools) * INPUT_MARGIN)
    schema = kwargs.get("response_format")
    if isinstance(schema, Mapping):
        counted += len(json.dumps(schema, default=str)) // 3
    return counted + PER_MESSAGE_TOKENS * len(messages)


def worst_case(
    client: LLMClient, spec: ModelSpec, messages: list[dict[str, Any]], kwargs: Mapping[str, Any], out_tokens: int, exact: bool = False
) -> Decimal:
    """The most an attempt can cost: its input (paid once) and the most output each of its `n` choices may produce."""
    return client.prices(spec).worst(input_tokens(client, spec, messages, kwargs, exact), out_tokens * choices(kwargs))


def choices(kwargs: Mapping[str, Any]) -> int:
    n = kwargs.get("n")
    return n if isinstance(n, int) and not isinstance(n, bool) and n > 1 else 1


MIN_BOUNDED_OUTPUT = 16  # a budget-bounded answer shorter than this is no answer: refuse instead


def bounded_output(client: LLMClient, spec: ModelSpec, messages: list[dict[str, Any]], kwargs: Mapping[str, Any], state: BudgetState,
                   out: int) -> int | None:
    """The most output tokens (per choice, at most `out`) whose worst case fits beside the input in
    what settled money leaves of the cap; None when that is under MIN_BOUNDED_OUTPUT."""
    if state.cap_usd is None:
        return None
    prices = client.prices(spec)
    left = state.cap_usd - state.spent_usd - state.presumed_usd - prices.worst(input_tokens(client, spec, messages, kwargs, exact=True), 0)
    if prices.output <= 0:
        fits = out if left >= 0 else 0
    else:
        fits = min(out, max(0, int(left / (prices.output * choices(kwargs)))))
    return fits if fits >= MIN_BOUNDED_OUTPUT else None


def bill(
    client: LLMClient, spec: ModelSpec, response: Any, outcome: AttemptOutcome, messages: list[dict[str, Any]],
    reservation: Reservation | None, malformed: bool = False, sent: bool = True,
) -> Bill:
    """What one attempt is billed."""
    if not sent:
        return Bill(0, 0, Decimal(0))
    if response is None:
        if outcome == "cancelled" or malformed:
            # The provider may bill a request we stopped waiting for, or answered unreadably: its input.
            t_in = client.count_tokens(spec, messages)
            return _bounded(Bill(t_in, 0, client.prices(spec).cost(t_in, 0), "malformed reply: billed its input" if malformed else ""),
                            reservation)
        return Bill(0, 0, Decimal(0))  # an error response is not billed
    usage = client.usage(response)
    t_in, t_out, cached, written = usage.tokens_in, usage.tokens_out, usage.cached_in, usage.written_in
    notes = []
    if min(t_in, t_out, cached) < 0:
        t_in, t_out, cached = max(t_in, 0), max(t_out, 0), max(cached, 0)
        notes.append("provider reported negative usage: counted as 0")
    if t_in == 0:
        t_in = client.count_tokens(spec, messages)
        notes.append("no usage reported: input counted")
    text = answer_text(response)
    if t_out == 0 and text:
        t_out = max(1, len(text) // 4)
        notes.append("output estimated from the text")
    return _bounded(Bill(t_in, t_out, client.prices(spec).cost(t_in, t_out, cached, written), "; ".join(notes), min(cached, t_in)),
                    reservation)


def _bounded(found: Bill, reservation: Reservation | None) -> Bill:
    if reservation is None or found.cost_usd <= reservation.amount_usd:
        return found
    note = f"provider's usage costs ${found.cost_usd}, over the ${reservation.amount_usd} held: billed the hold"
    return Bill(found.tokens_in, found.tokens_out, reservation.amount_usd, f"{found.note}; {note}" if found.note else note, found.cached_in)
