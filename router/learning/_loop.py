"""The learning loop inside a Router: labels from shadow calls, failed checks and feedback, stored in
the ledger; refits off the request path; the new model and thresholds swapped in whole."""

from __future__ import annotations

import logging
import random
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal
from typing import Any, TypeVar

from classifiers import LinearClassifier, Outcome, Row
from router._config import LEARNING_TENANT
from router._core import Core
from router._errors import BudgetExceeded, InvalidRequestError, TierwiseError
from router._sections import LearningConfig
from router.learning._models import InForce
from router.learning._pace import allowed_share, paced_labels
from router.learning._refit import refit
from router.learning._select import scores_of
from router.learning._simulate import _Sampler
from router.learning._verify import Escalation, graded_locally, label_answers, refit_verifier, sample_weight
from router.ledger import Label, period_start

_log = logging.getLogger("tierwise")
_T = TypeVar("_T")
JUDGE_PROMPT = (
    "You grade an AI assistant's answer to a request.\n\n[REQUEST]\n{request}\n\n[ANSWER]\n{answer}\n\n"
    "How well does the answer serve the request? Reply with one integer from 0 (wrong or useless) to 10 (fully correct and helpful), nothing else."
)
REFERENCE_PROMPT = (
    "You grade an AI assistant's answer to a request against a reference answer that is known to be good.\n\n[REQUEST]\n{request}\n\n"
    "[REFERENCE]\n{reference}\n\n[ANSWER]\n{answer}\n\nHow well does the answer serve the request, next to the reference? Reply with "
    "one integer from 0 (wrong or useless) to 10 (as good as the reference), nothing else."
)
_GRADE = re.compile(r"\b(10|[0-9])\b")
UNPARSABLE_STOP = 5  # judge replies without a grade, in a row, before the loop stops buying labels


@dataclass(frozen=True)
class _Seen:
    tenant: str
    tier: str
    features: tuple[set[str], list[float]]  # as the classifier made them: turned into a label's form only when one is stored


def text_of(response: Any) -> str:
    try:
        return str(response.choices[0].message.content or "")
    except (AttributeError, IndexError, TypeError):
        return ""


def rows_of(labels: list[Label], tiers: list[str]) -> list[Row]:
    """Labels as labelled rows (features in `extra`). A label of the cheapest tier alone (a failed check,
    feedback) counts the top tier as fully adequate: the top tier is the reference the score is about."""
    rows = []
    for lab in labels:
        quality = dict(lab.quality)
        if tiers[0] in quality and tiers[-1] not in quality:
            quality[tiers[-1]] = 1.0
        outcomes = {t: Outcome(quality=q, cost_usd=lab.cost_usd.get(t)) for t, q in quality.items()}
        rows.append(Row(id=f"label-{lab.id}", messages=lab.messages or [{"role": "user", "content": ""}], outcomes=outcomes,
                        source=f"tierwise-{lab.source}", task=lab.source, extra={"features": lab.features, "request_id": lab.request_id,
                                                                                 "tenant": lab.tenant}, weight=sample_weight(lab)))
    return rows


class Learner:
    """Owns the loop's state: recent requests (for feedback), label counts, refits and the live model."""

    def __init__(self, core: Core, config: LearningConfig, complete: Callable[..., Any], seed: int | None = None) -> None:
        self._core, self._cfg, self._complete = core, config, complete
        self.enabled = core.config.learning_on  # off unless configured: observe() then keeps nothing
        self._tiers = [t.name for t in core.config.tiers]
        clf = core.brain[0]
        self._prior = clf if isinstance(clf, LinearClassifier) else None
        self._recent: OrderedDict[tuple[str, str], _Seen] = OrderedDict()
        self._lock = threading.Lock()
        self._sampler = _Sampler(config.shadow_rate, random.Random(seed))
        self._pool: ThreadPoolExecutor | None = None
        self._refit_lock = threading.Lock()
        self._owner = uuid.uuid4().hex  # this instance, in the ledger's refit slots
        self._models = InForce(core, self._tiers, config.shared)
        if self.enabled and not config.shared:  # said once a router: earlier versions pooled every tenant's labels
            _log.info("tierwise learning: each tenant's labels refit a model of its own (learning.shared: true pools them)")
        self._next_pickup = 0.0
        self.refits: list[dict[str, Any]] = []
        self.skipped_budget = 0
        self.skipped_labels = 0  # sampled, but the period's `labels` were all bought
        self.skipped_pace = 0  # sampled, but `spread` holds the rest of the period's budget for later
        self.now: Callable[[], float] = time.time  # the period's clock (a test sets its own)
        self.unparsable = 0  # judge replies without a grade
        self._unparsable_run = 0
        self.stopped: str | None = None  # why shadow labels stopped being bought, once they have

    # ---- on the request path: cheap ----------------------------------------------------------------
    def observe(self, tenant: str, request_id: str, messages: list[dict[str, Any]], features: Any, route: Any, response: Any) -> None:
        """Remember a served request; maybe buy a shadow label (after the caller has its answer)."""
        if not self.enabled or tenant == LEARNING_TENANT or features is None:
            return
        seen = _Seen(tenant, route.tier, features)
        with self._lock:
            if self._cfg.remember:
                self._recent[(tenant, request_id)] = seen
                if len(self._recent) > self._cfg.remember:
                    self._recent.popitem(last=False)
            shadow = self._cfg.shadow_rate > 0 and self.stopped is None and route.tier in self._tiers and self._sampler.take(route.score)
            weight = self._sampler.weight  # what this label will stand for in fits and calibrations
        failed = [a.tier for a in route.attempts if a.outcome == "check_failed"]
        if failed:  # a tier whose answer failed a check: a free label for it
            self._submit(self._store, Label(request_id, tenant, "check", {t: 0.0 for t in failed}, self._features(seen.features)))
        if shadow:
            self._submit(self._shadow, seen, request_id, messages, text_of(response), float(route.cost_usd), weight)
        if self._core.clock() >= self._next_pickup:
            self._next_pickup = self._core.clock() + self._cfg.pickup_s
            self._submit(self._models.pickup)

    def feedback(self, request_id: str, quality: float, tenant: str = "default") -> None:
        """A grade in [0, 1] for the answer a recent request got (a thumbs-down is 0)."""
        if not self.enabled:
            raise InvalidRequestError("feedback needs learning: add a learning: section to the config (learning: {} keeps the defaults)")
        if isinstance(quality, bool) or not isinstance(quality, (int, float)) or not 0 <= quality <= 1:
            raise InvalidRequestError(f"quality must be a number in [0, 1], got {quality!r}")
        with self._lock:
            seen = self._recent.get((tenant, request_id))
        if seen is None:
            raise InvalidRequestError(f"no recent request {request_id!r} of tenant {tenant!r} (only the last "
                                      f"{self._cfg.remember} requests of this process are kept for feedback)")
        self._core.ledger.add_label(Label(request_id, tenant, "feedback", {seen.tier: float(quality)}, self._features(seen.features)), time.time())
        self._counted(tenant)

    def state(self) -> dict[str, Any]:
        """Labels held, refits so far, the thresholds in force (the deployment's; `tenants`: those with
        a model of their own), and the label spend of this period."""
        policy = self._core.brain[1]
        labels = self._core.ledger.label_count()
        return {
            "labels": labels, "new_since_refit": labels - self._core.ledger.labels_at_last_refit() if self._models.shared else None,
            "shared": self._models.shared, "tenants": self._models.tenants(), "tenant_model_id": self._models.tenant_model_id,
            "refits": list(self.refits),
            "last_refit": self.refits[-1] if self.refits else None,
            "thresholds": list(getattr(policy, "thresholds", ())), "label_spend_usd": self._core.ledger.spent(LEARNING_TENANT),
            "label_budget_usd": self._cfg.budget_usd, "skipped_for_budget": self.skipped_budget, "model_id": self._models.model_id,
            "unparsable_grades": self.unparsable, "stopped": self.stopped, "skipped_for_labels": self.skipped_labels,
            "skipped_for_pace": self.skipped_pace,
        }

    def close(self, wait: bool = True) -> None:
        """Let pending shadow calls and refits finish (or not), then stop the worker threads."""
        while True:  # a label stored while closing submits its refit to a fresh pool: that one is waited for too
            with self._lock:
                pool, self._pool = self._pool, None  # a later request starts a fresh pool
            if pool is None:
                return
            pool.shutdown(wait=wait, cancel_futures=not wait)
            if not wait:
                return

    # ---- off the request path ------------------------------------------------------------------------
    def _features(self, features: tuple[set[str], list[float]]) -> dict[str, Any]:
        toks, dense = features
        vocab = self._prior.vocab if self._prior is not None else {}
        # Prompt words are kept only with store_prompts (and then only words the shipped model knows,
        # sorted): without it a label holds counts and numbers, never what the user wrote.
        words = sorted(t for t in toks if t in vocab) if self._cfg.store_prompts else []
        return {"w": words, "n": len(toks), "d": [round(v, 6) for v in dense]}

    def _submit(self, fn: Callable[..., None], *args: Any) -> None:
        # Submitted under the lock that `close` takes to swap the pool out: a job submitted by a worker
        # thread while the caller closes lands in the pool being drained or in a fresh one, never in
        # a pool already shut down (which dropped it: a refit check lost, so a due refit never ran).
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="tierwise-learning")
            try:
                self._pool.submit(self._guarded, fn, *args)
            except RuntimeError:  # the interpreter is exiting (a script that never closed its router): the label is dropped, quietly
                _log.debug("tierwise learning: %s dropped at shutdown", getattr(fn, "__name__", "job"))

    @staticmethod
    def _guarded(fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - a background job must not die silently, nor kill the pool
            _log.warning("tierwise learning: %s failed: %s: %s", getattr(fn, "__name__", "job"), type(exc).__name__, exc)

    def _with_answers(self, features: dict[str, Any], messages: list[dict[str, Any]], texts: dict[str, str]) -> dict[str, Any]:
        """A label's features, with its graded answers' verifier features when learning trains the verifier."""
        below = {t: x for t, x in texts.items() if t != self._tiers[-1]}  # the top tier's answer is never checked
        if not self._cfg.verifier or not below:
            return features
        return {**features, "answers": label_answers(messages, below, words=self._cfg.store_prompts)}

    def _store(self, label: Label, messages: list[dict[str, Any]] | None = None) -> None:
        if self._cfg.store_prompts and messages is not None:
            label = Label(label.request_id, label.tenant, label.source, label.quality, label.features, label.cost_usd, messages)
        self._core.ledger.add_label(label, time.time())
        self._counted(label.tenant)

    def _counted(self, tenant: str) -> None:
        if self._cfg.refit_every and (self._prior is not None or self._cfg.verifier):
            self._submit(self._maybe_refit, self._models.scope(tenant))  # off the caller's thread: it reads the ledger

    def _maybe_refit(self, scope: str | None) -> None:
        """Refit the scope's model (a tenant's, or the deployment's) when `refit_every` of its labels came
        since its last refit by any instance sharing the ledger, and no instance is refitting it: the
        ledger's refit slot decides, so one refit happens, not one each."""
        with self._refit_lock:  # checks take turns (a skipped check could miss the label that makes a refit due)
            covered = self._core.ledger.claim_refit(self._owner, time.time(), self._cfg.refit_every, tenant=scope)
            if covered is not None:
                try:
                    self._refit(scope)
                finally:
                    self._core.ledger.release_refit(self._owner, covered, tenant=scope)

    def _ask(self, messages: list[dict[str, Any]], who: str, **kwargs: Any) -> Any:
        pin = {"tier": who} if who in self._tiers else {"model": who}
        return self._complete(messages, tenant=LEARNING_TENANT, checks=[], **pin, **kwargs)

    def _shadow(self, seen: _Seen, request_id: str, messages: list[dict[str, Any]], answer: str, cost: float, weight: float = 1.0) -> None:
        now, cfg = self.now(), self._cfg
        if cfg.spread and self._core.ledger.spent(LEARNING_TENANT) >= cfg.budget_usd * Decimal(allowed_share(cfg.period, now)):
            self.skipped_pace += 1
            return
        window = int(period_start(cfg.period, now, UTC) if cfg.period != "total" else 0)
        # One slot a label, shared by instances: a tenant's own (one tenant's flood cannot take every
        # tenant's labels), then the period's.
        slots = [(f"labels\x1f{seen.tenant}", cfg.tenant_labels)] if cfg.tenant_labels is not None else []
        if cfg.labels is not None:
            slots.append(("labels", paced_labels(cfg.labels, cfg.period, now) if cfg.spread else cfg.labels))
        if not all(self._core.ledger.take_slot(name, window, limit) for name, limit in slots):
            self.skipped_labels += 1
            return
        request = "\n".join(str(m.get("content", "")) for m in messages if m.get("role") != "system")[-8000:]
        features = {**self._features(seen.features), "sw": round(weight, 6)}
        if self._cfg.downward and seen.tier != self._tiers[0]:
            self._downward(seen, request_id, messages, request, answer, cost, features)
            return
        if self._cfg.downward and self._cfg.verifier:  # the cheapest tier answered: a grade of its answer is what the verifier needs
            self._graded_alone(seen, request_id, messages, request, answer, cost, features)
            return
        costs, texts = {seen.tier: cost}, {seen.tier: answer}

        def buy() -> dict[str, float | None]:
            # The served answer is graded first: a judge that cannot grade is found before other tiers are bought.
            grades = {seen.tier: self._grade(request, answer)}
            for tier in self._tiers:
                if tier not in grades and grades[seen.tier] is not None:
                    r = self._ask(messages, tier, max_tokens=self._cfg.shadow_max_tokens)
                    costs[tier], texts[tier] = float(r.route.cost_usd), text_of(r)
                    grades[tier] = self._grade(request, texts[tier])
            return grades

        grades = self._paid("shadow", request_id, buy)
        if grades is None or any(g is None for g in grades.values()):
            return  # no budget, a failed call or an unreadable grade: no label rather than a wrong one
        graded = {t: g for t, g in grades.items() if g is not None}
        features = self._with_answers(features, messages, texts)
        self._store(Label(request_id, seen.tenant, "shadow", graded, features, costs), messages)

    def _downward(self, seen: _Seen, request_id: str, messages: list[dict[str, Any]], request: str, answer: str, cost: float,
                  features: dict[str, Any]) -> None:
        """A downward label: the cheapest tier's answer, graded against the answer served (the
        reference, which stands in for the top tier's in the label): one cheap call and one grade."""
        small = self._tiers[0]

        def buy() -> tuple[Any, float | None, bool]:
            r = self._ask(messages, small, max_tokens=self._cfg.shadow_max_tokens)
            local = graded_locally(text_of(r), answer) if self._cfg.grade_locally else None
            return r, local if local is not None else self._grade(request, text_of(r), reference=answer), local is not None

        r, grade, local = self._paid("downward", request_id, buy) or (None, None, False)
        if r is None or grade is None:
            return  # no budget, a failed call or an unreadable grade: no label rather than a wrong one
        # "g": the grade is the final answers' match, not a judge's.
        features = self._with_answers({**features, "g": "local"} if local else features, messages, {small: text_of(r)})
        self._store(Label(request_id, seen.tenant, "downward", {small: grade, self._tiers[-1]: 1.0}, features,
                          {small: float(r.route.cost_usd), self._tiers[-1]: cost}), messages)

    def _graded_alone(self, seen: _Seen, request_id: str, messages: list[dict[str, Any]], request: str, answer: str, cost: float,
                      features: dict[str, Any]) -> None:
        """An answer label: the answer served, graded by the judge with no other tier bought (one call)."""
        grade = self._paid("answer", request_id, lambda: self._grade(request, answer))
        if grade is not None:
            features = self._with_answers(features, messages, {seen.tier: answer})
            self._store(Label(request_id, seen.tenant, "answer", {seen.tier: grade}, features, {seen.tier: cost}), messages)

    def _paid(self, kind: str, request_id: str, buy: Callable[[], _T]) -> _T | None:
        """What `buy` returns; None when the learning budget is spent for this period or a call
        failed (said in the log): no label then."""
        try:
            return buy()
        except BudgetExceeded:
            self.skipped_budget += 1
        except TierwiseError as exc:
            _log.warning("tierwise learning: %s label for %s skipped: %s", kind, request_id, exc)
        return None

    def _grade(self, request: str, answer: str, reference: str | None = None) -> float | None:
        """The judge's grade of one answer in [0, 1], or None when its reply holds no grade; after
        UNPARSABLE_STOP such replies in a row the loop stops buying labels and says why."""
        prompt = (JUDGE_PROMPT.format(request=request, answer=answer[-8000:]) if reference is None
                  else REFERENCE_PROMPT.format(request=request, reference=reference[-8000:], answer=answer[-8000:]))
        judged = self._ask([{"role": "user", "content": prompt}], str(self._cfg.judge), max_tokens=8)
        reply = text_of(judged)
        found = _GRADE.search(reply)
        with self._lock:
            if found is not None:
                self._unparsable_run = 0
                return int(found.group(1)) / 10
            self.unparsable += 1
            self._unparsable_run += 1
            if self._unparsable_run >= UNPARSABLE_STOP and self.stopped is None:
                self.stopped = (f"the judge {self._cfg.judge!r} answered {UNPARSABLE_STOP} times in a row without a grade 0-10 "
                                f"(last: {reply[:80]!r}): shadow labels stopped; set learning.judge to a model that follows the prompt")
                _log.warning("tierwise learning: %s", self.stopped)
        return None

    def _refit(self, scope: str | None) -> None:
        core = self._core
        labels = core.ledger.labels(tenant=scope)  # a tenant's model learns from its own labels only
        clf, policy = self._models.brain(scope)
        entry: dict[str, Any] = {"at": time.time(), "labels": len(labels), "swapped": False, "tenant": scope}
        if self._prior is not None:
            # An answer graded alone teaches the verifier only: counting the top tier adequate where both
            # fail taught the prompt model (in simulate) to send the top tier requests it answers no better.
            prompt_labels = [lab for lab in labels if lab.source != "answer"]
            result = refit(rows_of(prompt_labels, self._tiers), self._tiers, clf, self._prior, getattr(policy, "thresholds", ()),
                           self._cfg.target.get("quality", 0.95))
            entry |= {"labels": result.labels, "swapped": result.swapped, "auc_old": result.auc_old,
                      "auc_new": result.auc_new, "thresholds": list(result.thresholds), "why": result.why,
                      "candidates": {name: {"cv_auc": round(m, 4), "se": round(se, 4)} for name, (m, se) in result.candidates.items()}}
            if result.swapped:  # thresholds move only with a swapped model
                self._models.install(result.classifier, list(result.thresholds), scope)
                if isinstance(result.classifier, LinearClassifier):
                    core.ledger.save_model(result.classifier.to_dict(), list(result.thresholds), result.labels, time.time(), tenant=scope)
            _log.info("tierwise learning: refit on %d labels: %s", result.labels, result.why)
        if self._cfg.verifier:
            clf, policy = self._models.brain(scope)  # the prompt model and thresholds in force now (the refit above may have swapped them)
            thresholds = list(getattr(policy, "thresholds", ()))
            bars = [core.config.escalation.bars.get(t, 0.5) for t in self._tiers[:-1]]
            # How the router would escalate on it, so that a verifier only joins when its escalations
            # pay (a policy without thresholds cannot be replayed: the verifier's fit alone decides).
            how = Escalation(self._tiers, scores_of(clf, rows_of(labels, self._tiers)), thresholds, bars) if thresholds else None
            v = refit_verifier(labels, self._models.verifier(scope), escalation=how)
            entry["verifier"] = {"swapped": v.swapped, "answers": v.answers, "log_loss_old": v.loss_old, "log_loss_new": v.loss_new,
                                 "why": v.why}
            if v.swapped and v.verifier is not None:
                self._models.install_verifier(v.verifier, scope)
                core.ledger.save_model(v.verifier.to_dict(), [], v.answers, time.time(), tenant=scope)
            _log.info("tierwise learning: %s", v.why)
        self.refits.append(entry)
        if scope is None:  # ours: not installed again at the next pickup (a tenant's is, harmlessly)
            latest = core.ledger.latest_model()
            self._models.model_id = latest.id if latest else self._models.model_id
