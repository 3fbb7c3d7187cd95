"""Two tenants with daily caps: one runs low, is downgraded to the small tier, then refused.

Runs offline as written (OFFLINE = True: litellm's mock_response answers, 50 tokens in and 400
out a call). Set OFFLINE = False and OPENAI_API_KEY to run it against the real models.
"""

from router import BudgetExceeded, Router, RouterConfig

OFFLINE = True

config = RouterConfig.from_dict({
    "tiers": [{"name": "small", "models": ["gpt-5-nano"]}, {"name": "frontier", "models": ["gpt-5"]}],
    "thresholds": [0.1],  # this prompt scores about 0.19: it starts at the frontier tier
    "tenants": {"acme": {"budget_usd": "0.009", "period": "day"}, "globex": {"budget_usd": "1.00", "period": "day"}},
    "downgrade": {0.5: 1},  # under half the budget left: no more frontier calls
    "budget_wait_s": 0,
    "ledger": "sqlite://:memory:",
})
router = Router(config)
hard = [{"role": "user", "content": "Prove that there are infinitely many primes. Explain each step and why it works."}]
mock = {"choices": [{"message": {"role": "assistant", "content": "Suppose finitely many..."}}],
        "usage": {"prompt_tokens": 50, "completion_tokens": 400, "total_tokens": 450}}
extra = {"mock_response": mock} if OFFLINE else {}

for i in range(10):
    for tenant in ("acme", "globex"):
        try:
            resp = router.complete(hard, tenant=tenant, max_tokens=400, **extra)
            left = router.ledger.state(tenant).remaining_usd
            print(f"request {i} {tenant:<7} score {resp.route.score:.2f} -> {resp.route.tier:<8} ${resp.route.cost_usd:.6f}  left ${left:.6f}")
        except BudgetExceeded as exc:
            print(f"request {i} {tenant:<7} -> refused: BudgetExceeded, ${exc.state.remaining_usd} left of ${exc.state.cap_usd}")

print(f"\n{'tenant':<8} {'entries':>7} {'spent $':>10} {'cap $':>6} period")
for tenant in ("acme", "globex"):
    state = router.ledger.state(tenant)
    print(f"{tenant:<8} {len(router.ledger.entries(tenant)):>7} {state.spent_usd:>10} {state.cap_usd:>6} {state.period}")
