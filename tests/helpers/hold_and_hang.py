"""Claim a request id and hold most of a tenant's budget, then hang until killed.

python hold_and_hang.py LEDGER_URL
"""

from __future__ import annotations

import sys
import time
from decimal import Decimal

from router import RouterConfig
from router.ledger import open_ledger

config = RouterConfig.from_dict({"tenants": {"acme": {"budget_usd": "0.001", "period": "total"}}})
ledger = open_ledger(sys.argv[1], config.budget_for)
ledger.claim_request("hung-1", "acme")
ledger.reserve("acme", "hung-1", Decimal("0.00099"))
print("held", flush=True)
time.sleep(600)
