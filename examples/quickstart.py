"""Quick start: route one request and see how it was routed.

Runs offline as written: OFFLINE = True answers through litellm's mock_response. Set it to False
(and OPENAI_API_KEY) to call the default models for real.
"""

from router import Router, RouterConfig

OFFLINE = True

config = RouterConfig(ledger="sqlite://:memory:")  # default tiers: gpt-5-nano / gpt-5-mini / gpt-5
router = Router(config)
extra = {"mock_response": "2 + 2 = 4."} if OFFLINE else {}

resp = router.complete([{"role": "user", "content": "What is 2+2?"}], tenant="acme", **extra)
print("answer:", resp.choices[0].message.content)
route = resp.route
print(f"tier={route.tier} model={route.model} score={route.score:.3f} cost_usd={route.cost_usd}")
for attempt in route.attempts:
    print(f"  attempt: {attempt.tier}/{attempt.model} {attempt.outcome} ${attempt.cost_usd} {attempt.latency_s * 1000:.0f} ms")
print("acme spent:", router.ledger.spent("acme"))
