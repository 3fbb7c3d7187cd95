"""Structured output with a schema check: the small tier's invalid JSON escalates to the next tier.

Runs offline as written: OFFLINE = True serves the models from a local OpenAI-compatible server
whose small model forgets a field. Set it to False to use the default models for real.
"""

from pydantic import BaseModel

from router import Router, RouterConfig
from router.checks import matches_schema
from router.testing import LocalOpenAIServer

OFFLINE = True


class Invoice(BaseModel):
    customer: str
    total_eur: float


server = LocalOpenAIServer({
    "gpt-5-nano": ['{"customer": "ACME GmbH"}'],  # no total: fails the schema
    "gpt-5-mini": ['{"customer": "ACME GmbH", "total_eur": 1290.5}'],
}).start()
local = {"api_base": server.url, "api_key": "offline"} if OFFLINE else {}
config = RouterConfig.from_dict({
    "tiers": [{"name": n, "models": [{"model": f"openai/{m}", **local}]}
              for n, m in (("small", "gpt-5-nano"), ("flash", "gpt-5-mini"), ("frontier", "gpt-5"))],
    "ledger": "sqlite://:memory:",
})
router = Router(config)
resp = router.complete(
    [{"role": "user", "content": "Extract the invoice: ACME GmbH owes 1,290.50 EUR."}],
    checks=[matches_schema(Invoice)],
    response_format=Invoice,
)
print("invoice:", Invoice.model_validate_json(resp.choices[0].message.content))
for a in resp.route.attempts:
    print(f"  {a.tier:<6} {a.model:<18} {a.outcome:<13} ${a.cost_usd:.8f} {a.reason[:60]}")
print(f"total cost ${resp.route.cost_usd}")
server.stop()
