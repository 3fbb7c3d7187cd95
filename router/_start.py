"""The start of a request: validated, its id claimed, cached answers served, scored and planned;
nothing is called or billed yet. What follows is the `Run`'s (router._run)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from classifiers import LinearClassifier, featurize
from policies import BudgetView, Plan, ThresholdPolicy
from router._billing import most_tokens
from router._cache import cache_key, cached
from router._core import Core, Replay, Request
from router._errors import InvalidRequestError, RateLimited
from router._logging import log_info
from router._messages import check_name, check_session, fingerprint, validate_messages
from router._params import allowed_params
from router._run import Run
from router._sessions import callers_cache_key, callers_user, kept, prompt_cache_key
from router.checks import all_of


def start(
    core: Core, messages: Any, *, tenant: str, request_id: str | None, checks: Any, strict: bool, kwargs: Mapping[str, Any],
    tier: str | None = None,
) -> Run | Replay:
    """Validate, claim the request id, score and plan; nothing is called or billed yet."""
    msgs = validate_messages(messages)
    check_name("tenant", tenant)
    if request_id is not None:
        check_name("request_id", request_id)
    if "messages" in kwargs:
        raise InvalidRequestError("'messages' is the first argument, not a keyword")
    kwargs = dict(kwargs)
    session = check_session(kwargs.pop("session_id", None))
    pin_tier, pin_model = core.pin(kwargs, tier)
    kwargs = allowed_params(kwargs)
    if kwargs.get("prompt_cache_key") is not None:
        kwargs["prompt_cache_key"] = callers_cache_key(tenant, kwargs["prompt_cache_key"])
    elif session is not None and "prompt_cache_key" not in kwargs:  # the provider keeps the session's prefix cached
        kwargs["prompt_cache_key"] = prompt_cache_key(tenant, session)
    if isinstance(kwargs.get("user"), str):
        kwargs["user"] = callers_user(tenant, kwargs["user"])
    core.admit(tenant)
    rid = request_id or uuid.uuid4().hex
    if request_id is not None:
        stored = core.ledger.claim_request(rid, tenant, fingerprint(msgs, kwargs))
        if stored is not None:
            return Replay(rid, stored, tenant)
    key = cache_key(core, tenant, msgs, kwargs, (pin_tier, pin_model), checks)
    hit = cached(core, key, tenant, rid, keyed=request_id is not None) if key is not None else None
    if hit is not None:
        return hit
    try:
        tokens = core.hold_tokens(tenant, lambda: most_tokens(msgs, kwargs))  # tpm: a cache hit or a replay used none
    except RateLimited:
        if request_id is not None:
            core.ledger.finish_request(rid, "failed", None, None, tenant=tenant)  # the id may be sent again
        raise
    classifier, policy = core.brain_for(tenant)
    # Featurised once: the score and, kept for feedback and labels, the features.
    features = None
    if isinstance(classifier, LinearClassifier):
        features = featurize(msgs)
        score = classifier.score_features(*features)
    else:
        score = float(classifier.score(msgs))
    # The budget view only matters to a policy that downgrades: without rules, no read on the hot path.
    blind = isinstance(policy, ThresholdPolicy) and not policy.downgrade
    state = core.ledger.state(tenant) if core.ledger.budget_for(tenant) and pin_tier is None and not blind else None
    view = BudgetView(state.cap_usd, state.remaining_usd) if state else BudgetView()
    plan = policy.plan(score, view) if pin_tier is None else Plan((pin_tier,), f"score {score:.3f}; pinned to {pin_model or pin_tier}")
    if session is not None and pin_tier is None:
        plan = kept(core, plan, tenant, session)
    log_info(
        core.logger, "tierwise.decision", request_id=rid, tenant=tenant, score=round(score, 4), plan=list(plan.tiers), reason=plan.reason,
        messages=msgs,  # dropped from the log unless log_content is on
    )
    request = Request(
        messages=msgs, tenant=tenant, request_id=rid, keyed=request_id is not None,
        checks=core.checks if checks is None else all_of(checks), strict=strict, kwargs=kwargs, pinned=pin_tier is not None,
        model=pin_model, session=session,
    )
    run = Run(core=core, request=request, plan=plan, score=score)
    run.cache_key = key
    run.token_hold = tokens
    run.features = features
    return run
