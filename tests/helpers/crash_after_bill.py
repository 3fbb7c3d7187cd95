"""Answer one request with an id, then die (os._exit) right after its bill is written, before anything else.

python crash_after_bill.py LEDGER_URL
"""

from __future__ import annotations

import os
import sys
from typing import Any

from router import Router, RouterConfig
from router.testing import ScriptedClient


class DieAfterBill:
    """A logger whose attempt event (written just after the ledger took the bill) kills the process."""

    def info(self, event: str, **fields: Any) -> None:
        if event == "tierwise.attempt":
            os._exit(9)


config = RouterConfig.from_dict({"tiers": [{"name": "small", "models": ["gpt-5-nano"]}], "ledger": sys.argv[1]})
router = Router(config, client=ScriptedClient(default="paid for once"), logger=DieAfterBill())
router.complete([{"role": "user", "content": "hello there"}], tenant="acme", request_id="crash-1")
sys.exit(0)  # not reached
