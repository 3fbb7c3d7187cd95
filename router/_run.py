"""One request's way through its plan: it books and judges; the drivers only call.

    run = start(core, messages, ...)          # router._start: validated, scored, planned; nothing billed yet
    while (call := run.next_call()) is not None:
        Sleep -> sleep, ask again; Call -> make it, then run.succeeded(...) or run.failed(...)
    run.result()
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from policies import Plan
from router._billing import bill, bounded_output, worst_case
from router._cache import remember
from router._config import ModelSpec
from router._core import Call, Core, Request, is_provider_error
from router._errors import BudgetExceeded, EscalationExhausted, LedgerError
from router._logging import log_info
from router._plan import BudgetWait, PlanCursor, Sleep
from router._retry import is_auth_error, is_caller_error, is_context_window, is_malformed_reply, tries_of
from router._sessions import keep
from router._types import Attempt, AttemptOutcome, RequestStatus, Route, RoutedResponse, attach_route, stored_route
from router.checks import QualityCheck, Verdict, answer_text, barred, verified
from router.ledger import Entry, Reservation, StoredAnswer

StreamCloser = Callable[[list[Any], bool, BaseException | None], BaseException | None]


class Run:
    """One request's way through its plan. Drivers loop: next_call(), make the call, report back."""

    def __init__(self, *, core: Core, request: Request, plan: Plan, score: float) -> None:
        self.core = core
        self.request = request
        self.plan = plan
        self.cursor = PlanCursor(list(plan.tiers))
        self._started = core.clock()
        self.budget_wait = BudgetWait(core.config.budget_wait_s, core.clock, deadline=self._started + core.config.timeout_s)
        self._awaiting: Decimal | None = None  # the hold a Sleep waits room for: polled with reads
        self.route = Route(
            request_id=request.request_id, tenant=request.tenant, score=score, planned_tiers=list(plan.tiers), reason=plan.reason
        )
        self._attempt = core.ledger.next_attempt(request.request_id, request.tenant) if request.keyed else 1
        self._final: Any = None  # the answer that passed
        self._best: Any = None  # the last answer that failed its checks, returned if none passes
        self._best_chunks: list[Any] = []
        self._last_error: BaseException | None = None
        self._stopped = False
        self.cache_key: str | None = None  # where its answer goes in the response cache
        self.features: tuple[set[str], list[float]] | None = None  # the classifier's input, for labels
        self.token_hold: tuple[int, int] | None = None  # (minute, tokens held) against the tenant's tpm
        self._answering: ModelSpec | None = None  # the model whose answer the checks judge (what `sample` asks again)
        self._on_loop = False  # billing on the event loop: a bill's commit is left to the driver to await
        self.commit_due: int | None = None  # the bill whose commit the driver awaits (after succeed_on_loop)

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.request.messages

    @property
    def checks(self) -> QualityCheck | None:
        return self.request.checks

    @property
    def stream(self) -> bool:
        return self.request.stream

    @property
    def buffer_stream(self) -> bool:
        """A checked stream is read whole, judged, then replayed; an unchecked one passes through."""
        return self.stream and self.core.config.check_streams and self.checks is not None

    @property
    def answered(self) -> bool:  # an answer passed: next_call() has nothing more to plan
        return self._final is not None

    def settles_in_memory(self) -> bool:
        """Billing an answer touches only memory: local checks only (`QualityCheck.local`); no verifier, tpm
        count, stored answer, session or cache entry (each reads or writes a database)."""
        r = self.request
        return ((self.checks is None or self.checks.local) and self.core.verifier_for(r.tenant) is None and self.token_hold is None and not r.keyed
                and r.session is None and self.cache_key is None and not self.stream)

    # ---- the loop ------------------------------------------------------------------------------
    def next_call(self) -> Call | Sleep | None:
        """The next model to call with its budget held; `Sleep` to wait for the budget; None when over."""
        cursor = self.cursor
        while not self._stopped and self._final is None and (name := cursor.current) is not None:
            if cursor.moves > self.core.config.max_escalations:
                self.route.note(f"max_escalations ({self.core.config.max_escalations}) reached")
                break
            tier = self.core.tiers[name]
            if cursor.model >= len(tier.models):
                cursor.escalate()
                continue
            spec = tier.models[cursor.model]
            if self.request.model is not None and spec.model != self.request.model:
                cursor.next_model()  # pinned to one model of this tier
                continue
            if cursor.min_window and (self.core.client.max_input_tokens(spec) or cursor.min_window) < cursor.min_window:
                cursor.next_model()  # this model's window is known to be too small for the request
                continue
            try:
                self._await_room()
                reservation, kwargs = self._reserve(spec, tier.max_output_tokens, self.request.kwargs)
            except BudgetExceeded as exc:
                if self.route.attempts:
                    self._stopped = True  # budget ends the cascade: return the best answer so far
                    self.route.note(f"the budget cannot hold {name} ({self._hold_text(exc, spec, tier.max_output_tokens)}): stopped")
                    break
                wait = self._budget_blocked(exc, self._hold_text(exc, spec, tier.max_output_tokens))
                if wait is not None:
                    return wait
                continue
            return self._call(tier.name, spec, reservation, kwargs)
        return None

    def _call(self, tier: str, spec: ModelSpec, reservation: Reservation | None, kwargs: Mapping[str, Any]) -> Call:
        call = Call(tier, spec, self._attempt, reservation, kwargs, self.core.clock())
        self._attempt += 1
        return call

    def _await_room(self) -> None:
        """While waiting for the budget, look with a read (no write transaction) until there is room."""
        amount, self._awaiting = self._awaiting, None
        if amount is None:
            return
        state = self.core.ledger.state(self.request.tenant)
        if state.cap_usd is not None and state.spent_usd + state.reserved_usd + amount > state.cap_usd:
            raise BudgetExceeded("still no room", state, amount)

    def _budget_blocked(self, exc: BudgetExceeded, hold: str) -> Sleep | None:
        """The first attempt does not fit: wait for pending holds, else try a cheaper tier, else raise."""
        wait = self.budget_wait(exc)
        if wait is not None:
            self._awaiting = exc.requested_usd if wait.seconds > 0 else None
            return wait
        tier = self.cursor.current
        if not self.request.pinned and self.cursor.step_down([t.name for t in self.core.config.tiers]):
            self.route.note(f"the budget cannot hold {tier} ({hold}): stepped down to {self.cursor.current}")
            return None
        self._finish_request("failed")
        raise exc

    def _out_tokens(self, spec: ModelSpec, out_cap: int | None, kwargs: Mapping[str, Any]) -> int:
        """The most output an attempt may produce: the call's max_tokens, the tier's cap, the model's limit."""
        out = kwargs.get("max_tokens") or kwargs.get("max_completion_tokens")
        return int(out or out_cap or self.core.client.max_output_tokens(spec))

    def _reserve(self, spec: ModelSpec, out_cap: int | None, kwargs: Mapping[str, Any]) -> tuple[Reservation | None, Mapping[str, Any]]:
        """Hold the attempt's worst case: its input plus the most output it may produce (and the
        call's parameters, with max_tokens set when the budget bounded the output)."""
        if self.core.ledger.budget_for(self.request.tenant) is None:
            return None, kwargs
        out = self._out_tokens(spec, out_cap, kwargs)
        worst = worst_case(self.core.client, spec, self.messages, kwargs, out)  # bytes bound the tokens: no tokenizer
        tenant, rid = self.request.tenant, self.request.request_id
        try:
            return self.core.ledger.reserve(tenant, rid, worst), kwargs
        except BudgetExceeded:
            exact = worst_case(self.core.client, spec, self.messages, kwargs, out, exact=True)
            if exact < worst:  # close to the budget the bound's slack matters: count the tokens
                try:
                    return self.core.ledger.reserve(tenant, rid, exact), kwargs
                except BudgetExceeded as again:
                    exc = again
            if kwargs.get("max_tokens") or kwargs.get("max_completion_tokens"):
                raise
            return self._reserve_room(spec, out, kwargs, exc)

    def _reserve_room(self, spec: ModelSpec, out: int, kwargs: Mapping[str, Any], exc: BudgetExceeded) -> tuple[Reservation, Mapping[str, Any]]:
        """No max_tokens was asked for and the model's output limit does not fit: bound the output by
        what settled money leaves (live holds are waited for) and tell the provider the same bound."""
        fits = bounded_output(self.core.client, spec, self.messages, kwargs, exc.state, out)
        if fits is None:
            raise exc
        bounded = {**kwargs, "max_tokens": fits}
        reservation = self.core.ledger.reserve(self.request.tenant, self.request.request_id,
                                               worst_case(self.core.client, spec, self.messages, bounded, fits, exact=True))
        self.route.note(f"max_tokens set to {fits} for {spec.model}: the budget has no room for its {out}-token output limit")
        return reservation, bounded

    def _hold_text(self, exc: BudgetExceeded, spec: ModelSpec, out_cap: int | None) -> str:
        """Why a hold did not fit, for route.reason: pass max_tokens to make the worst case smaller."""
        out = self._out_tokens(spec, out_cap, self.request.kwargs)
        left = exc.state.remaining_usd
        return f"{spec.model}'s worst case ${exc.requested_usd} with {out} output tokens, ${left} left"

    def succeeded(self, call: Call, response: Any, tries: int) -> None:
        """Bill the answer, judge it, and either finish or move up the plan."""
        verdict = Verdict(True)
        if self.checks is not None and (not self.stream or self.buffer_stream):
            try:
                self._answering = call.spec
                verdict = self.checks(self.messages, response, self)
            except BaseException as exc:
                # The answer is paid for whatever its check did (a bug in a custom check, a judge
                # over budget or down): bill it, release the request id, then let the error out.
                self._settle(call, response, "check_failed", "check raised " + self.core.why(exc), tries)
                self._finish_request("failed")
                raise
        bar = self.core.config.escalation.bars.get(call.tier)
        if not self.stream or self.buffer_stream:  # the learned verifier scores answers below the top tier
            verdict = verified(self.core.verifier_for(self.request.tenant), bar, call.tier, self.messages, response, verdict, self.cursor.tier < len(self.cursor.tiers) - 1)
        verdict = barred(bar, call.tier, verdict)
        self._settle(call, response, "ok" if verdict.passed else "check_failed", verdict.reason, tries)
        if verdict.passed:
            self._final = response
        else:
            self._best = response
            self.route.note(f"{call.tier} ({call.spec.model}) failed its check: {verdict.reason or 'no reason given'}; moved up")
            self.cursor.escalate()

    def succeed_on_loop(self, call: Call, response: Any, tries: int) -> None:
        """`succeeded`, its bill queued: `commit_due` names a commit to await before answering (also on a raise)."""
        self.commit_due, self._on_loop = None, True
        try:
            self.succeeded(call, response, tries)
        finally:
            self._on_loop = False

    def failed(self, call: Call, exc: BaseException, partial: list[Any] | None = None) -> None:
        """Record a failed call (and the chunks a broken stream gave); fall back, or raise."""
        provider = is_provider_error(exc)
        outcome: AttemptOutcome = "error" if provider else "cancelled" if not isinstance(exc, Exception) else "client_error"
        response = self.core.client.assemble(partial, self.messages) if partial else None
        self._settle(call, response, outcome, self.core.why(exc), tries_of(exc), malformed=is_malformed_reply(exc))
        if not provider:
            self._finish_request("failed")
            raise exc
        self._last_error = exc
        if is_caller_error(exc) or (is_auth_error(exc) and self.core.config.auth_errors == "raise"):
            self._finish_request("failed")
            raise self.core.provider_error(call.spec.model, exc, self.route.attempts, tier=call.tier) from exc
        if is_context_window(exc):
            # Move on to a model with a larger window (litellm's model map knows them), in any tier.
            window = (self.core.client.max_input_tokens(call.spec) or 0) + 1
            self.cursor.min_window = max(self.cursor.min_window, window)
            self.route.note(f"{call.spec.model}'s input window is too small: moved to a larger one")
        else:
            self.route.note(f"{call.spec.model} failed ({type(exc).__name__}): fell back")
        self.cursor.next_model()

    def dropped(self, call: Call) -> None:
        """A call that was planned (its budget held) but never sent: release the hold, bill nothing."""
        self._settle(call, None, "cancelled", "caller went away before the call was sent", 1, sent=False)
        self._finish_request("failed")

    def ask(self, model: str, messages: list[dict[str, Any]]) -> str:
        """A check's own model call (the judge): budgeted and billed as its own entry, tier `judge`."""
        return answer_text(self._check_call(self.core.spec_for(model), messages, {"max_tokens": 1024}))

    def sample(self, messages: list[dict[str, Any]], n: int) -> list[str]:
        """`n` more answers of the model that answered last, in one call (`n=`: the prompt is paid
        once), budgeted (held n times) and billed as one entry of tier `judge`."""
        if self._answering is None:
            raise RuntimeError("sample() asks the model whose answer a check is judging: call it from a check")
        response = self._check_call(self._answering, messages, {"max_tokens": 1024, "n": n})
        return [c.message.content for c in getattr(response, "choices", None) or [] if isinstance(getattr(c.message, "content", None), str)]

    def _check_call(self, spec: ModelSpec, messages: list[dict[str, Any]], kwargs: dict[str, Any]) -> Any:
        call = self._call("judge", spec, self._reserve(spec, None, kwargs)[0], kwargs)
        try:
            response, tries = self.core.client.complete(spec, messages, kwargs)
        except BaseException as exc:
            provider = is_provider_error(exc)
            self._settle(call, None, "error" if provider else "cancelled", f"judge: {type(exc).__name__}", 1)
            if provider:  # typed, with the key scrubbed, like any other provider failure
                raise self.core.provider_error(spec.model, exc, self.route.attempts) from exc
            raise
        self._settle(call, response, "judge", "", tries)
        return response

    def _settle(
        self, call: Call, response: Any, outcome: AttemptOutcome, reason: str, tries: int, *, malformed: bool = False, sent: bool = True
    ) -> Attempt:
        billed = bill(self.core.client, call.spec, response, outcome, self.messages, call.reservation, malformed, sent)
        t_in, t_out, cost = billed.tokens_in, billed.tokens_out, billed.cost_usd
        reason = f"{reason}; {billed.note}" if reason and billed.note else reason or billed.note
        latency = self.core.clock() - call.started
        attempt = Attempt(call.tier, call.spec.model, outcome, cost, latency, t_in, t_out, reason, tries, billed.cached_in)
        rid, tenant = self.request.request_id, self.request.tenant
        entry = Entry(rid, call.attempt, tenant, call.tier, call.spec.model, t_in, t_out, cost, latency, outcome, reason,
                      cached_in=billed.cached_in, in_session=int(self.request.session is not None))
        self.route.attempts.append(attempt)
        self.route.cost_usd += cost
        if outcome in ("ok", "check_failed"):
            self.route.tier, self.route.model = call.tier, call.spec.model
        self.route.latency_s = self.core.clock() - self._started
        if self._on_loop:
            self.commit_due = self.core.ledger.settle_later(call.reservation, entry, self._answer(response, outcome)) or self.commit_due
        else:
            self.core.ledger.settle(call.reservation, entry, self._answer(response, outcome))
        if self.token_hold is not None:  # tpm: the minute counts what was billed; the first bill gives the hold back
            minute, held = self.token_hold
            self.token_hold = (minute, 0)
            self.core.ledger.adjust_tokens(tenant, minute, t_in + t_out - held)
        log_info(
            self.core.logger, "tierwise.attempt", request_id=rid, tenant=tenant, tier=call.tier, model=call.spec.model,
            score=round(self.route.score, 4), tokens_in=t_in, tokens_out=t_out, cost_usd=str(cost),
            latency_s=round(latency, 4), outcome=outcome, reason=reason, tries=tries,
        )
        return attempt

    def result(self) -> RoutedResponse:
        """The answer once next_call() returned None; raises when there is none to give."""
        self.route.latency_s = self.core.clock() - self._started
        if self._final is not None:
            self._finish_request("done", self._final)
            keep(self.core, self.route.tier, self.request.tenant, self.request.session)
            remember(self.core, self.cache_key, self.request.tenant, self._final, self.route)
            return attach_route(self._final, self.route)
        if self._best is not None:
            self.route.escalation_exhausted = True
            if self.request.strict:
                self._finish_request("failed")
                raise EscalationExhausted(
                    f"no tier of {list(self.plan.tiers)} gave an answer that passed the checks", list(self.route.attempts)
                )
            self._finish_request("done", self._best)
            return attach_route(self._best, self.route)
        self._finish_request("failed")
        if self._last_error is None:
            raise EscalationExhausted("the plan allowed no call", list(self.route.attempts))
        model = self.route.attempts[-1].model if self.route.attempts else "?"
        raise self.core.provider_error(model, self._last_error, self.route.attempts) from self._last_error

    # ---- streams -------------------------------------------------------------------------------
    def buffered(self, call: Call, chunks: list[Any], tries: int) -> bool:
        """Judge a stream read whole; True when it passed (or is the best there will be)."""
        self.succeeded(call, self.core.client.assemble(chunks, self.messages), tries)
        if self._final is not None:
            self._finish_request("done", self._final)
            return True
        self._best_chunks = chunks
        return False

    def stream_started(self, call: Call, tries: int) -> StreamCloser:
        """The callback that bills a stream when it ends, fails or is closed (returns the typed error to raise)."""
        self.route.tier, self.route.model = call.tier, call.spec.model

        def on_close(chunks: list[Any], completed: bool, error: BaseException | None) -> BaseException | None:
            response = self.core.client.assemble(chunks, self.messages)
            outcome: AttemptOutcome
            if error is not None and is_provider_error(error):
                outcome, reason = "error", self.core.why(error)
            elif completed:
                outcome, reason = "ok", ""
            else:
                outcome, reason = "cancelled", "stream closed early" if response is not None else "stream closed before any chunk"
            self._settle(call, response, outcome, reason, tries)
            self.route.latency_s = self.core.clock() - self._started
            self._finish_request("done" if completed and response is not None else "failed", response)
            if outcome == "ok" and response is not None:  # a whole stream is an answer like any other: cached for repeats
                remember(self.core, self.cache_key, self.request.tenant, response, self.route)
            if outcome == "error" and error is not None:
                return self.core.provider_error(call.spec.model, error, self.route.attempts)
            return None

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

    def _finish_request(self, status: RequestStatus, response: Any = None) -> None:
        if self.token_hold is not None and self.token_hold[1]:  # ended before any bill: its tokens go back
            minute, held = self.token_hold
            self.token_hold = (minute, 0)
            try:
                self.core.ledger.adjust_tokens(self.request.tenant, minute, -held)
            except LedgerError:
                pass  # over-counted for this minute only
        if not self.request.keyed:
            return
        dumped = response.model_dump() if status == "done" and hasattr(response, "model_dump") else None
        try:
            self.core.ledger.finish_request(
                self.request.request_id, status, dumped, stored_route(self.route) if dumped else None, tenant=self.request.tenant
            )
        except LedgerError as exc:  # a paid answer was stored with its bill; the status can wait
            logging.getLogger("tierwise").warning("tierwise: could not mark request %s %s: %s", self.request.request_id, status, exc)

    def _answer(self, response: Any, outcome: AttemptOutcome) -> StoredAnswer | None:
        """For a caller's request id, the answer that an "ok" attempt paid for, stored with its bill."""
        if not self.request.keyed or outcome != "ok" or not hasattr(response, "model_dump"):
            return None
        return StoredAnswer(response.model_dump(), stored_route(self.route))
