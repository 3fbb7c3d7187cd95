"""One app instance for the two-process learning test: labels half the requests, then waits for "go",
serves one more request (which looks for a published model) and prints its learning state as JSON.

    python learning_worker.py LEDGER_URL FIRST COUNT TENANT
"""

from __future__ import annotations

import json
import os
import random
import sys

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from router import Router, RouterConfig
from router.testing import ScriptedClient


def main() -> None:
    url, first, count, tenant = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    config = RouterConfig.from_dict({"ledger": url, "thresholds": [0.9, 0.95], "checks": [],
                                     "learning": {"refit_every": 120, "pickup_s": 0, "store_prompts": True}})
    router = Router(config, client=ScriptedClient())
    rng = random.Random(0)
    hard = [rng.random() < 0.5 for _ in range(first + count)]
    for i in range(first, first + count):  # 'zebra' requests defeat the cheap tier: a thumbs-down
        word = "zebra" if hard[i] else "apple"
        resp = router.complete([{"role": "user", "content": f"tell me about the {word} number {i}"}], tenant=tenant)
        router.feedback(resp.route.request_id, 0.0 if hard[i] else 1.0, tenant=tenant)
    router.learning.close()  # a refit this instance won runs to its end
    print("ready", flush=True)
    sys.stdin.readline()
    router.complete([{"role": "user", "content": "hi"}], tenant=tenant)
    router.learning.close()
    state = router.learning.state()
    last = state["last_refit"] or {}
    thresholds = state["tenants"].get(tenant, {}).get("thresholds")  # the tenant's own model: its labels refit it
    print(json.dumps({"tenant_model_id": state["tenant_model_id"], "thresholds": thresholds, "refits": len(state["refits"]),
                      "labels": state["labels"], "swapped": last.get("swapped"), "why": last.get("why")}), flush=True)
    router.close()


if __name__ == "__main__":
    main()
