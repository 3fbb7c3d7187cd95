"""Two processes share one tenant's budget through PostgreSQL: together they never pass the cap.

Needs a PostgreSQL server: TIERWISE_PG (default postgresql://postgres@127.0.0.1:5432/postgres).
Runs offline as written (OFFLINE = True: litellm's mock_response answers).
"""

import os
from decimal import Decimal
from multiprocessing import Pool

from router import BudgetExceeded, Router, RouterConfig

OFFLINE = True
PG = os.environ.get("TIERWISE_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
CAP = "0.0002"  # about 23 requests of gpt-5-nano at litellm's mock usage
config = RouterConfig.from_dict({
    "tiers": [{"name": "small", "models": ["gpt-5-nano"]}],
    "tenants": {"shared-demo": {"budget_usd": CAP, "period": "total"}},
    "ledger": PG,
})


def worker(name: str) -> tuple[str, int, int]:
    router = Router(config)
    served = refused = 0
    for _ in range(20):
        try:
            router.complete([{"role": "user", "content": "hello"}], tenant="shared-demo", max_tokens=20,
                            **({"mock_response": "hi"} if OFFLINE else {}))
            served += 1
        except BudgetExceeded:
            refused += 1
    return name, served, refused


if __name__ == "__main__":
    before = Router(config).ledger.spent("shared-demo")
    with Pool(2) as pool:
        results = pool.map(worker, ["process-1", "process-2"])
    for name, served, refused in results:
        print(f"{name}: served {served}, refused {refused}")
    spent = Router(config).ledger.spent("shared-demo")
    print(f"tenant spent ${spent} of ${CAP} (this run ${spent - before}); within the cap: {spent <= Decimal(CAP)}")
