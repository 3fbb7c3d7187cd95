"""One instance on its own host (its own TIERWISE_HOME): bills five answers that stay in its outbox,
holds one more call in flight, says "done" and waits to be killed.

    TIERWISE_HOME=... python host_writer.py LEDGER_URL
"""

from __future__ import annotations

import sys
import time
from decimal import Decimal

from router import RouterConfig
from router.ledger import Entry, open_ledger

config = RouterConfig.from_dict({"tenants": {"acme": {"budget_usd": "100", "period": "total"}}})  # far from the cap: a slice with slack
ledger = open_ledger(sys.argv[1], config.budget_for, flush_s=60)  # bills wait in the outbox
for i in range(5):
    held = ledger.reserve("acme", f"h1-{i}", Decimal("0.01"))
    ledger.settle(held, Entry(f"h1-{i}", 1, "acme", "small", "m", 10, 20, Decimal("0.01"), 0.01, "ok"))
ledger.reserve("acme", "h1-open", Decimal("0.2"))  # answered by the provider, maybe, when the host died
print("done", flush=True)
time.sleep(600)
