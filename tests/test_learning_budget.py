"""The learning budget when a process dies: label calls in flight are billed at their holds, and the
labels' tenant never spends past its cap, whichever instance buys."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from conftest import local_tiers

from router import Router, RouterConfig
from router.ledger import open_ledger
from router.testing import LocalOpenAIServer

LEARNING = "tierwise-learning"
ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


def test_the_label_budget_holds_when_a_process_dies_with_label_calls_in_flight(tmp_path: Path) -> None:
    cap = Decimal("0.02")
    hang = threading.Event()
    hang.set()

    def responder(_model: str, messages: list[dict[str, Any]]) -> Any:
        if "[REQUEST]" in str(messages[-1]["content"]):  # the judge: hangs while the first process lives
            return {"content": "8", "delay": 5} if hang.is_set() else "8"
        return "ok"

    url = f"sqlite:///{tmp_path / 'l.db'}"
    with LocalOpenAIServer(responder=responder) as server:
        cfg = {"tiers": local_tiers(server.url), "ledger": url, "thresholds": [0.9, 0.95], "checks": [], "budget_wait_s": 0,
               "learning": {"shadow_rate": 1.0, "judge": "frontier", "budget_usd": str(cap), "refit_every": 0, "shadow_max_tokens": 64}}
        proc = subprocess.Popen([sys.executable, str(Path(__file__).parent / "helpers" / "labeller.py"), json.dumps(cfg), "2"], env=ENV,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "sent"
        deadline = time.monotonic() + 30
        while sum("[REQUEST]" in str(r["body"]["messages"][-1]["content"]) for r in server.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.kill()  # two judge calls in flight, each held against the labels' cap
        proc.wait()
        hang.clear()
        config = RouterConfig.from_dict(cfg)
        ledger = open_ledger(url, config.budget_for, owner_timeout_s=1.0)
        with Router(config, ledger=ledger) as router:
            for i in range(40):  # another instance buys labels until the cap says no
                router.complete([{"role": "user", "content": f"more {i}"}], tenant="acme")
                router.learning.close()
            presumed = [e for e in ledger.entries(LEARNING) if e.outcome == "presumed"]
            assert len(presumed) == 2 and all(e.cost_usd > 0 for e in presumed)  # the calls in flight billed at their holds
            assert router.learning.state()["skipped_for_budget"] > 0  # the cap was reached ...
            assert ledger.spent(LEARNING) <= cap, ledger.spent(LEARNING)  # ... and never passed
            assert router.learning.state()["labels"] >= 1
