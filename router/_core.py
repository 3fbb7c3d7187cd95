"""The decision core shared by Router and AsyncRouter: it plans, books and judges; drivers only call."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from classifiers import Classifier
from policies import BudgetView, Plan, Policy
from router.checks import QualityCheck, Verdict, all_of, answer_text
from router._client import LLMClient, scrub
from router._config import ModelSpec, RouterConfig
from router._errors import BudgetExceeded, EscalationExhausted, InvalidRequestError, ProviderError
from router._ledger import Entry, Ledger, Reservation, StoredRequest
from router._messages import validate_messages
from router._retry import is_caller_error, is_context_window, status_of
from router._types import Attempt, Route, RoutedResponse, route_from_dict, route_to_dict

_PROVIDER_BASES = frozenset({"OpenAIError", "APIError", "APIStatusError"})


def _is_provider_error(exc: BaseException) -> bool:
    return any(cls.__name__ in _PROVIDER_BASES for cls in type(exc).__mro__)


def _why(exc: BaseException, spec: ModelSpec) -> str:
    """An attempt's reason for an exception: its type and message, keys scrubbed, bounded."""
    return f"{type(exc).__name__}: {scrub(str(exc), [spec])[:300]}"


@dataclass
class Call:
    """One model call the driver must make."""

    tier: str
    spec: ModelSpec
    attempt: int
    reservation: Reservation | None
    kwargs: dict[str, Any]
    started: float = 0.0


@dataclass
class Replay:
    """A request id seen before: its stored answer, or that another caller still works on it."""

    request_id: str
    stored: StoredRequest


@dataclass
class Core:
    """Everything a request needs, wired once per Router."""

    config: RouterConfig
    classifier: Classifier
    policy: Policy
    ledger: Ledger
    client: LLMClient
    checks: QualityCheck | None
    logger: Any
    clock: Callable[[], float] = time.monotonic
    tiers: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.tiers = {t.name: t for t in self.config.tiers}

    def spec_for(self, model: str) -> ModelSpec:
        """The configured spec of a model (its api_base, keys, prices), or a bare one."""
        for tier in self.config.tiers:
            for spec in tier.models:
                if spec.model == model:
                    return spec
        return ModelSpec(model=model)

    def start(
        self,
        messages: Any,
        tenant: str,
        request_id: str | None,
        checks: Any,
        strict: bool,
        kwargs: Mapping[str, Any],
    ) -> Run | Replay:
        """Validate, claim the request id, score and plan; nothing is called or billed yet."""
        msgs = validate_messages(messages)
        if not isinstance(tenant, str) or not tenant:
            raise InvalidRequestError("tenant must be a non-empty string")
        if request_id is not None and (not isinstance(request_id, str) or not request_id):
            raise InvalidRequestError("request_id must be a non-empty string")
        for reserved in ("model", "messages"):
            if reserved in kwargs:
                raise InvalidRequestError(f"{reserved!r} is chosen by the router; pass it in the config instead")
        rid = request_id or uuid.uuid4().hex
        if request_id is not None:
            stored = self.ledger.claim_request(rid, tenant)
            if stored is not None:
                return Replay(rid, stored)
        score = float(self.classifier.score(msgs))
        state = self.ledger.state(tenant) if self.config.budget_for(tenant) else None
        view = BudgetView(state.cap_usd, state.remaining_usd) if state else BudgetView()
        plan = self.policy.plan(score, view)
        self.logger.info(
            "tierwise.decision", request_id=rid, tenant=tenant, score=round(score, 4), plan=list(plan.tiers), reason=plan.reason
        )
        run_checks = self.checks if checks is None else all_of(checks)
        return Run(self, msgs, tenant, rid, request_id is not None, plan, score, run_checks, strict, dict(kwargs))

    def replayed(self, replay: Replay, rebuild: Callable[[dict[str, Any]], Any]) -> RoutedResponse | None:
        """The stored answer of a finished request id, or None while it is still pending."""
        stored = replay.stored
        if stored.status != "done" or stored.response is None or stored.route is None:
            return None
        route = route_from_dict(stored.route)
        route.replayed = True
        return RoutedResponse(rebuild(stored.response), route)


class Run:
    """One request's way through its plan. Drivers loop: next_call(), make the call, report back."""

    def __init__(
        self,
        core: Core,
        messages: list[dict[str, Any]],
        tenant: str,
        request_id: str,
        keyed: bool,
        plan: Plan,
        score: float,
        checks: QualityCheck | None,
        strict: bool,
        kwargs: dict[str, Any],
    ) -> None:
        self.core = core
        self.messages = messages
        self.tenant = tenant
        self.keyed = keyed
        self.plan = plan
        self.checks = checks
        self.strict = strict
        self.kwargs = kwargs
        self.stream = bool(kwargs.get("stream"))
        # A checked stream is read whole, judged, then replayed; an unchecked one passes through.
        self.buffer_stream = self.stream and core.config.check_streams and checks is not None
        self._min_window = 0  # after a context-window error: the least input window worth trying
        self._tiers = list(plan.tiers)
        self._worst = Decimal(0)
        self._waits = 0
        self.route = Route(request_id=request_id, tenant=tenant, score=score, planned_tiers=list(plan.tiers))
        self._tier = 0
        self._model = 0
        self._attempt = core.ledger.next_attempt(request_id) if keyed else 1
        self._started = core.clock()
        self._final: Any = None
        self._best: Any = None
        self._last_error: BaseException | None = None
        self._best_chunks: list[Any] = []
        self._stopped = False

    # ---- the loop ------------------------------------------------------------------------------
    def next_call(self) -> Call | float | None:
        """The next model to call with its budget reserved; None when the run is over.

        A float asks the driver to sleep that many seconds and ask again: the budget would cover
        the request once pending reservations settle (no false refusals).
        """
        while not self._stopped and self._final is None and self._tier < len(self._tiers):
            if self._tier > self.core.config.max_escalations:
                break
            tier = self.core.tiers[self._tiers[self._tier]]
            if self._model >= len(tier.models):
                self._tier, self._model = self._tier + 1, 0
                continue
            spec = tier.models[self._model]
            if self._min_window and (self.core.client.max_input_tokens(spec) or self._min_window) < self._min_window:
                self._model += 1  # this model's window is known to be too small for the request
                continue
            try:
                reservation = self._reserve(spec, tier.max_output_tokens)
            except BudgetExceeded as exc:
                if self.route.attempts:
                    self._stopped = True  # budget ends the cascade: return the best answer so far
                    break
                wait = self._budget_blocked(exc)
                if wait is not None:
                    return wait
                continue
            call = Call(tier.name, spec, self._attempt, reservation, self.kwargs, self.core.clock())
            self._attempt += 1
            return call
        return None

    def _budget_blocked(self, exc: BudgetExceeded) -> float | None:
        """The first attempt does not fit: wait for pending holds, else try a cheaper tier, else raise."""
        state = exc.state
        fits_alone = state.cap_usd is not None and state.spent_usd + self._worst <= state.cap_usd
        now = self.core.clock()
        if fits_alone and state.reserved_usd > 0 and now - self._started < self.core.config.budget_wait_s:
            self._waits += 1
            return min(0.2, 0.01 * 2 ** min(self._waits, 5))
        names = [t.name for t in self.core.config.tiers]
        current = names.index(self._tiers[self._tier])
        if current > 0:
            self._tiers.insert(self._tier, names[current - 1])  # a cheaper tier may still fit
            self._model = 0
            return None
        self._finish_request("failed")
        raise exc

    def _reserve(self, spec: ModelSpec, out_cap: int | None, kwargs: Mapping[str, Any] | None = None) -> Reservation | None:
        """Hold the attempt's worst case: its input plus the most output it may produce."""
        if self.core.config.budget_for(self.tenant) is None:
            return None
        client = self.core.client
        kwargs = self.kwargs if kwargs is None else kwargs
        out = kwargs.get("max_tokens") or kwargs.get("max_completion_tokens")
        out = out or out_cap or client.max_output_tokens(spec)
        self._worst = client.prices(spec).cost(client.count_tokens(spec, self.messages), int(out))
        return self.core.ledger.reserve(self.tenant, self.route.request_id, self._worst)

    def succeeded(self, call: Call, response: Any, tries: int) -> None:
        """Bill the answer, judge it, and either finish or move up the plan."""
        verdict = Verdict(True)
        if self.checks is not None and (not self.stream or self.buffer_stream):
            try:
                verdict = self.checks(self.messages, response, _Judge(self))
            except BaseException as exc:
                # The answer is paid for whatever its check did (a bug in a custom check, a judge
                # over budget or down): bill it, release the request id, then let the error out.
                self._settle(call, response, "check_failed", "check raised " + _why(exc, call.spec), tries)
                self._finish_request("failed")
                raise
        verdict_ok, reason = verdict.passed, verdict.reason
        self._settle(call, response, "ok" if verdict_ok else "check_failed", reason, tries)
        if verdict_ok:
            self._final = response
        else:
            self._best = response
            self._tier, self._model = self._tier + 1, 0

    def failed(self, call: Call, exc: BaseException, partial: list[Any] | None = None) -> None:
        """Record a failed call (and the chunks a broken stream gave); fall back, or raise."""
        provider = _is_provider_error(exc)
        outcome = "error" if provider else "cancelled" if not isinstance(exc, Exception) else "client_error"
        response = self.core.client.assemble(partial, self.messages) if partial else None
        self._settle(call, response, outcome, _why(exc, call.spec), 1)
        if not provider:
            self._finish_request("failed")
            raise exc
        self._last_error = exc
        if is_caller_error(exc):
            self._finish_request("failed")
            raise self._provider_error(call.spec.model, exc) from exc
        if is_context_window(exc):
            # Move on to a model with a larger window (litellm's model map knows them), in any tier.
            self._min_window = max(self._min_window, (self.core.client.max_input_tokens(call.spec) or 0) + 1)
        self._model += 1

    def _settle(self, call: Call, response: Any, outcome: str, reason: str, tries: int) -> Attempt:
        client = self.core.client
        if response is not None:
            usage = client.usage(response)
            cost = client.prices(call.spec).cost(usage.tokens_in, usage.tokens_out, usage.cached_in)
            t_in, t_out = usage.tokens_in, usage.tokens_out
        elif outcome == "cancelled":
            # The provider may bill a request we stopped waiting for: at least its input.
            t_in, t_out = client.count_tokens(call.spec, self.messages), 0
            cost = client.prices(call.spec).cost(t_in, 0)
        else:
            t_in, t_out, cost = 0, 0, Decimal(0)  # an error response is not billed
        latency = self.core.clock() - call.started
        attempt = Attempt(call.tier, call.spec.model, outcome, cost, latency, t_in, t_out, reason, tries)
        self.core.ledger.settle(
            call.reservation,
            Entry(self.route.request_id, call.attempt, self.tenant, call.tier, call.spec.model, t_in, t_out, cost, latency, outcome, reason),
        )
        self.route.attempts.append(attempt)
        self.route.cost_usd += cost
        self.core.logger.info(
            "tierwise.attempt",
            request_id=self.route.request_id,
            tenant=self.tenant,
            tier=call.tier,
            model=call.spec.model,
            score=round(self.route.score, 4),
            tokens_in=t_in,
            tokens_out=t_out,
            cost_usd=str(cost),
            latency_s=round(latency, 4),
            outcome=outcome,
            reason=reason,
            tries=tries,
        )
        if outcome in ("ok", "check_failed"):
            self.route.tier, self.route.model = call.tier, call.spec.model
        return attempt

    def _provider_error(self, model: str, exc: BaseException) -> ProviderError:
        message = scrub(f"{model}: {type(exc).__name__}: {exc}", [t for tier in self.core.tiers.values() for t in tier.models])
        return ProviderError(message[:500], model=model, status_code=status_of(exc), attempts=list(self.route.attempts))

    def result(self) -> RoutedResponse:
        """The answer once next_call() returned None; raises when there is none to give."""
        self.route.latency_s = self.core.clock() - self._started
        if self._final is not None:
            self._finish_request("done", self._final)
            return RoutedResponse(self._final, self.route)
        if self._best is not None:
            self.route.escalation_exhausted = True
            if self.strict:
                self._finish_request("failed")
                raise EscalationExhausted(
                    f"no tier of {list(self.plan.tiers)} gave an answer that passed the checks", list(self.route.attempts)
                )
            self._finish_request("done", self._best)
            return RoutedResponse(self._best, self.route)
        self._finish_request("failed")
        if self._last_error is None:
            raise EscalationExhausted("the plan allowed no call", list(self.route.attempts))
        model = self.route.attempts[-1].model if self.route.attempts else "?"
        raise self._provider_error(model, self._last_error) from self._last_error

    # ---- streams -------------------------------------------------------------------------------
    def buffered(self, call: Call, chunks: list[Any], tries: int) -> bool:
        """Judge a stream read whole; True when it passed (or is the best there will be)."""
        self.succeeded(call, self.core.client.assemble(chunks, self.messages), tries)
        if self._final is not None:
            self._finish_request("done", self._final)
            return True
        self._best_chunks = chunks
        return False

    def stream_started(self, call: Call, tries: int) -> Callable[[list[Any], bool, BaseException | None], BaseException | None]:
        """The callback that bills a stream when it ends, fails or is closed (returns the typed error to raise)."""
        self.route.tier, self.route.model = call.tier, call.spec.model

        def on_close(chunks: list[Any], completed: bool, error: BaseException | None) -> BaseException | None:
            response = self.core.client.assemble(chunks, self.messages)
            provider = error is not None and _is_provider_error(error)
            if provider:
                outcome, reason = "error", _why(error, call.spec)
            elif completed:
                outcome, reason = "ok", ""
            else:
                outcome, reason = "cancelled", "stream closed early" if response is not None else "stream closed before any chunk"
            self._settle(call, response, outcome, reason, tries)
            self.route.latency_s = self.core.clock() - self._started
            self._finish_request("done" if completed and response is not None else "failed", response)
            return self._provider_error(call.spec.model, error) if provider and error is not None else None

        return on_close

    def stream_result(self) -> list[Any]:
        """The chunks to replay for a checked stream whose plan ran out (its best answer)."""
        self.result()  # raises, or settles the route as escalation_exhausted
        return self._best_chunks

    def abandon(self) -> None:
        """The caller went away: store a passed answer (a retry replays it, unpaid), else release the id."""
        if self._final is not None:
            self.route.latency_s = self.core.clock() - self._started
            self._finish_request("done", self._final)
        else:
            self._finish_request("failed")

    def _finish_request(self, status: str, response: Any = None) -> None:
        if not self.keyed:
            return
        dumped = response.model_dump() if status == "done" and hasattr(response, "model_dump") else None
        self.core.ledger.finish_request(self.route.request_id, status, dumped, route_to_dict(self.route) if dumped else None)


class _Judge:
    """The context checks get: a model call through the router's client, billed as its own entry."""

    def __init__(self, run: Run) -> None:
        self.run = run

    def ask(self, model: str, messages: list[dict[str, Any]]) -> str:
        run = self.run
        spec = run.core.spec_for(model)
        kwargs = {"max_tokens": 1024}
        call = Call("judge", spec, run._attempt, run._reserve(spec, None, kwargs), kwargs, run.core.clock())
        run._attempt += 1
        try:
            response, tries = run.core.client.complete(spec, messages, kwargs)
        except BaseException as exc:
            provider = _is_provider_error(exc)
            run._settle(call, None, "error" if provider else "cancelled", f"judge: {type(exc).__name__}", 1)
            if provider:  # typed, with the key scrubbed, like any other provider failure
                raise run._provider_error(spec.model, exc) from exc
            raise
        run._settle(call, response, "judge", "", tries)
        return answer_text(response)
