"""Conversations: a session stays on the tier that answered it and moves only up, because a switch
throws away the provider's prompt cache (cached input is billed at 10-50% of the input price, and a
long conversation's input is most of its bill). Sessions live in the ledger, per tenant, shared by
instances, and start again after `sessions.ttl_s` idle.
"""

from __future__ import annotations

import hashlib
import logging

from policies import Plan
from router._core import Core
from router._errors import LedgerError


def kept(core: Core, plan: Plan, tenant: str, session: str) -> Plan:
    """A later turn starts no lower than the tier its session is on: it stays, or moves up when its
    score asks for more (a budget's downgrade still closes the tiers above what the policy allows)."""
    names = [t.name for t in core.config.tiers]
    level = core.ledger.session_level(tenant, session, core.config.sessions.ttl_s)
    first = names.index(plan.tiers[0])
    if level is None or level <= first:
        return plan if level is None else Plan(plan.tiers, f"{plan.reason}; session {session}: on {plan.tiers[0]}")
    top = names.index(plan.tiers[-1])
    tiers = tuple(names[min(level, top) : top + 1])
    return Plan(tiers, f"{plan.reason}; kept on {tiers[0]} for session {session}")


def keep(core: Core, tier: str | None, tenant: str, session: str | None) -> None:
    """An answered turn: its session now stays at least on the tier that answered it."""
    if session is None or tier is None or tier not in core.tiers:
        return
    level = [t.name for t in core.config.tiers].index(tier)
    try:
        core.ledger.keep_session(tenant, session, level, tier, core.config.sessions.ttl_s)
    except LedgerError as exc:  # the answer is paid for and returned; the session starts afresh next time
        logging.getLogger("tierwise").warning("tierwise: could not keep session %s: %s", session, exc)


def prompt_cache_key(tenant: str, session: str) -> str:
    """The provider's prompt-cache hint for a session (OpenAI's `prompt_cache_key`): a digest, so the
    provider never sees the tenant's name or the session id; providers without it drop it."""
    return "tw-" + hashlib.sha256(f"{tenant}\x1f{session}".encode("utf-8", "surrogatepass")).hexdigest()[:32]


def callers_cache_key(tenant: str, key: str) -> str:
    """A caller's own `prompt_cache_key`, within its tenant: every tenant of a deployment shares the
    provider account's prompt cache, and a key sent as given could aim at another tenant's (a session's
    key is a digest anyone who knows the tenant and session id can compute). A session id holds no
    control character, so this never equals a session's key."""
    return prompt_cache_key(tenant, f"key\x1f{key}")


def callers_user(tenant: str, user: str) -> str:
    """A caller's `user` (the end-user id OpenAI monitors for abuse, and may block), within its tenant:
    sent as given, one tenant could get another tenant's end user flagged on the provider account
    they share. The same user of a tenant always maps to the same id, so the provider's per-user
    view still works, and the provider never sees the raw id (as OpenAI advises: hash it)."""
    return "tw-u-" + hashlib.sha256(f"{tenant}\x1fuser\x1f{user}".encode("utf-8", "surrogatepass")).hexdigest()[:32]
