"""Settle entries as fast as possible, printing each committed attempt number; meant to be SIGKILLed.

python killed_writer.py LEDGER_URL RUN_ID
"""

from __future__ import annotations

import sys
from decimal import Decimal

from router import RouterConfig
from router.ledger import Entry, open_ledger

config = RouterConfig.from_dict({"tenants": {"acme": {"budget_usd": "1000000", "period": "total"}}})
ledger = open_ledger(sys.argv[1], config.budget_for)
run = sys.argv[2]
print("ready", flush=True)
i = 0
while True:
    i += 1
    held = ledger.reserve("acme", f"{run}-{i}", Decimal("0.002"))
    ledger.settle(held, Entry(f"{run}-{i}", 1, "acme", "small", "m", 10, 20, Decimal("0.001"), 0.01, "ok"))
    ledger.reserve("acme", f"{run}-{i}-open", Decimal("0.003"))  # a hold the dead process never settles
    print(i, flush=True)
