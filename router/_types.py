"""What complete() returns: the litellm response plus how it was routed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from decimal import Decimal
from typing import Any, Literal, Protocol, Self, runtime_checkable

from router._quiet import quiet

# What became of one attempt: "ok" (passed its checks), "check_failed", "error" (the provider
# failed), "client_error" (our side raised, e.g. a bug in a callback), "cancelled" (the caller went
# away or a stream was closed early), "judge" (a call a quality check made).
# "presumed": an instance died with this hold's call in flight; billed at the hold (the worst case).
AttemptOutcome = Literal["ok", "check_failed", "error", "client_error", "cancelled", "judge", "presumed"]
# A request id's state in the ledger: served now, answered (its answer stored), or given up.
RequestStatus = Literal["pending", "done", "failed"]


@dataclass(frozen=True)
class Attempt:
    """One call to one model (after its retries), as recorded in the ledger."""

    tier: str
    model: str
    outcome: AttemptOutcome
    cost_usd: Decimal
    latency_s: float
    tokens_in: int = 0
    tokens_out: int = 0
    reason: str = ""
    tries: int = 1
    cached_in: int = 0  # of tokens_in, what the provider served from its prompt cache


@dataclass
class Route:
    """How a request was routed: the tier and model that answered, the score, cost and attempts."""

    request_id: str
    tenant: str
    score: float
    planned_tiers: list[str]
    tier: str | None = None
    model: str | None = None
    cost_usd: Decimal = Decimal(0)
    latency_s: float = 0.0
    attempts: list[Attempt] = field(default_factory=list)
    escalation_exhausted: bool = False
    replayed: bool = False
    reason: str = ""
    cached: bool = False  # answered from the response cache: billed $0  # why the plan was what it was, and every change of it, in order

    def note(self, why: str) -> None:
        """Add one change of plan to `reason`."""
        self.reason = f"{self.reason}; {why}" if self.reason else why

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (money as decimal strings): `json.dumps(resp.route.to_dict())` works."""
        return route_to_dict(self)

    def __str__(self) -> str:
        tries = ", ".join(f"{a.tier}/{a.model}:{a.outcome}" for a in self.attempts)
        return (
            f"Route(tier={self.tier}, model={self.model}, score={self.score:.3f}, "
            f"cost_usd={self.cost_usd}, latency_s={self.latency_s:.3f}, attempts=[{tries}])"
        )


def route_to_dict(route: Route) -> dict[str, Any]:
    """A JSON-ready form of a route (money as decimal strings)."""
    data = asdict(route)
    data["cost_usd"] = format(route.cost_usd, "f")  # plain decimal text, never 6E-7
    for attempt in data["attempts"]:
        attempt["cost_usd"] = format(attempt["cost_usd"], "f")
    return data


# Attempt fields an instance of tierwise 0.1.0 sharing the ledger cannot read back (it takes every
# stored key as an argument): left out of stored routes, so a rolling upgrade replays on either version.
_NEWER_ATTEMPT_FIELDS = ("cached_in",)
_ROUTE_FIELDS = {f.name for f in fields(Route)}
_ATTEMPT_FIELDS = {f.name for f in fields(Attempt)}


def stored_route(route: Route) -> dict[str, Any]:
    """A route as the ledger and the cache keep it for replays: `route_to_dict` less newer fields."""
    data = route_to_dict(route)
    for attempt in data["attempts"]:
        for name in _NEWER_ATTEMPT_FIELDS:
            attempt.pop(name, None)
    return data


def route_from_dict(data: dict[str, Any]) -> Route:
    """A stored route; keys a newer version added are left out, so an older instance reads it too."""
    kept = {k: v for k, v in data.items() if k in _ROUTE_FIELDS}
    kept["cost_usd"] = Decimal(kept["cost_usd"])
    kept["attempts"] = [Attempt(**{k: v for k, v in a.items() if k in _ATTEMPT_FIELDS and k != "cost_usd"}, cost_usd=Decimal(a["cost_usd"]))
                        for a in kept["attempts"]]
    return Route(**kept)


@runtime_checkable
class RoutedResponse(Protocol):
    """What `complete()` returns: the litellm `ModelResponse` itself, with `.route` attached.

    `isinstance(resp, litellm.ModelResponse)` holds, `resp["choices"]` and `resp.choices` work, and
    `resp.model_dump()` is the provider's answer alone (the route is not one of its fields).
    """

    route: Route
    id: str
    choices: list[Any]

    def model_dump(self, *args: Any, **kwargs: Any) -> dict[str, Any]: ...

    def __getitem__(self, key: str) -> Any: ...


def attach_route(response: Any, route: Route) -> RoutedResponse:
    """The response itself with `.route` set; set outside pydantic's fields so dumps are unchanged."""
    object.__setattr__(response, "route", route)
    routed: RoutedResponse = response
    return routed


class _StreamBase:
    """Keeps the chunks seen and settles exactly once, whether the stream ends, fails or is closed."""

    def __init__(
        self, chunks: Any, route: Route, on_close: Callable[[list[Any], bool, BaseException | None], BaseException | None]
    ) -> None:
        self._chunks = chunks
        self.route = route
        self._on_close = on_close
        self._seen: list[Any] = []
        self._closed = False

    def _finish(self, *, completed: bool, error: BaseException | None = None) -> BaseException | None:
        """Settle once; returns the error to raise in place of `error` (a typed one), if any."""
        if not self._closed:
            self._closed = True
            return self._on_close(self._seen, completed, error)
        return None

    def _failed(self, exc: BaseException) -> BaseException:
        typed = self._finish(completed=False, error=exc)
        return exc if typed is None else typed

    def __del__(self) -> None:
        # A stream dropped half-read must still be billed.
        if not getattr(self, "_closed", True):
            self._finish(completed=False)


class RoutedStream(_StreamBase):
    """Chunks of a streamed answer; `.route` is complete once the stream is exhausted or closed."""

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        try:
            with quiet():
                chunk = next(self._chunks)
        except StopIteration:
            self._finish(completed=True)
            raise
        except BaseException as exc:
            error = self._failed(exc)
            if error is exc:
                raise
            raise error from exc
        self._seen.append(chunk)
        return chunk

    def close(self) -> None:
        """Stop early; what the provider may bill for so far is still settled."""
        closer = getattr(self._chunks, "close", None)
        if callable(closer):
            closer()
        self._finish(completed=False)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()



class AsyncRoutedStream(_StreamBase):
    """Async counterpart of RoutedStream."""

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        try:
            with quiet():
                chunk = await self._chunks.__anext__()
        except StopAsyncIteration:
            self._finish(completed=True)
            raise
        except BaseException as exc:
            error = self._failed(exc)
            if error is exc:
                raise
            raise error from exc
        self._seen.append(chunk)
        return chunk

    async def aclose(self) -> None:
        closer = getattr(self._chunks, "aclose", None)
        if callable(closer):
            await closer()
        self._finish(completed=False)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
