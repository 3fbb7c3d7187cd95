"""Run N concurrent requests for one tenant through a real Router; print what happened as JSON.

Used by the multi-process budget tests: python spender.py LEDGER_URL CAP N
"""

from __future__ import annotations

import json
import sys
import threading

from router import BudgetExceeded, Router, RouterConfig
from router.testing import ScriptedClient


def run(ledger: str, cap: str, n: int) -> dict[str, int]:
    config = RouterConfig.from_dict({
        "tiers": [{"name": "small", "models": ["gpt-5-nano"]}],
        "ledger": ledger,
        "tenants": {"acme": {"budget_usd": cap, "period": "total"}},
        "budget_wait_s": 10,
    })
    router = Router(config, client=ScriptedClient(), classifier=__import__("classifiers").HeuristicClassifier())
    counts = {"ok": 0, "refused": 0}
    lock = threading.Lock()
    start = threading.Barrier(n)

    def one() -> None:
        start.wait()
        try:
            router.complete([{"role": "user", "content": "hello"}], tenant="acme", max_tokens=40, mock_delay=0.05)
            outcome = "ok"
        except BudgetExceeded:
            outcome = "refused"
        with lock:
            counts[outcome] += 1

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    router.close()
    return counts


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1], sys.argv[2], int(sys.argv[3]))))
