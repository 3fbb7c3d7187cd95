"""The attack cells of bench/budgets.py: a starved machine, a 6 s provider, a clock 30 s behind, and
hosts with their own homes on one PostgreSQL ledger killed with SIGKILL, one never restarted."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

WORKER = str(Path(__file__).with_name("budgets.py"))


def spawn(cfg: dict[str, Any], n: int, start_at: float = 0.0, **options: Any) -> subprocess.Popen[str]:
    env = {**os.environ, **({"TIERWISE_HOME": options["home"]} if "home" in options else {})}
    return subprocess.Popen([sys.executable, WORKER, "--worker", json.dumps(cfg), str(n), str(start_at), json.dumps(options)],
                            stdout=subprocess.PIPE, text=True, env=env)


def totals(procs: list[subprocess.Popen[str]]) -> tuple[int, int]:
    found = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    return sum(t[0] for t in found), sum(t[1] for t in found)


def starved(cfg: dict[str, Any], n: int) -> tuple[int, int]:
    """4 cold processes while a busy loop per core (and one more) takes the CPU."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range((os.cpu_count() or 2) + 1)]
    try:
        return totals([spawn(cfg, n // 4) for _ in range(4)])
    finally:
        for h in hogs:
            h.kill()
            h.wait()


def paused(cfg: dict[str, Any], n: int) -> tuple[int, int]:
    """4 cold processes, two of them stopped (SIGSTOP) for 3 s mid-burst."""
    procs = [spawn(cfg, n // 4) for _ in range(4)]
    time.sleep(1.0)
    for p in procs[:2]:
        p.send_signal(signal.SIGSTOP)
    time.sleep(3.0)
    for p in procs[:2]:
        p.send_signal(signal.SIGCONT)
    return totals(procs)


def skewed(cfg: dict[str, Any], n: int) -> tuple[int, int]:
    """2 processes of n/2 threads; one's clock is 30 s behind."""
    return totals([spawn(cfg, n // 2, skew=-30.0), spawn(cfg, n // 2)])


def _until_answered(procs: list[subprocess.Popen[str]], count: int, timeout_s: float = 60.0) -> set[str]:
    """Read the workers' answer lines until `count` arrived (or the time is up)."""
    seen: set[str] = set()
    with selectors.DefaultSelector() as sel:
        for p in procs:
            assert p.stdout is not None
            sel.register(p.stdout, selectors.EVENT_READ)
        end = time.monotonic() + timeout_s
        while len(seen) < count and time.monotonic() < end:
            for key, _ in sel.select(timeout=0.5):
                line = key.fileobj.readline()  # type: ignore[union-attr]
                if line.startswith("rid "):
                    seen.add(line.strip())
    return seen


def killed_hosts(cfg: dict[str, Any], n: int, url: str, tmp: Path, cost: Decimal) -> dict[str, Any]:
    """4 hosts (own TIERWISE_HOME each) SIGKILLed mid-burst; host 0 restarts, hosts 1-3 never do.
    Every answer a host gave is either billed or inside its presumed spend, and spend + presumed <= cap."""
    from router import RouterConfig
    from router.ledger import open_ledger

    homes = [str(tmp / f"host{i}") for i in range(4)]
    procs = [spawn(cfg, n // 4, home=h, print_each=True) for h in homes]
    answered = _until_answered(procs, 12)  # mid-burst: replies are spread over 2 s
    for p in procs:
        p.send_signal(signal.SIGKILL)
    answered |= {line.strip() for p in procs for line in p.communicate()[0].splitlines() if line.startswith("rid ")}
    os.environ["TIERWISE_HOME"] = homes[0]  # host 0 restarts: its ledger commits its own outbox
    ledger = open_ledger(url, RouterConfig.from_dict(cfg).budget_for, owner_timeout_s=1.0)
    time.sleep(1.5)  # hosts 1-3 are dead by the server's clock
    billed = {f"rid {e.request_id}" for e in ledger.entries("acme") if e.outcome == "ok"}
    state = ledger.state("acme")
    ledger.close()
    unbilled = answered - billed
    cap = Decimal(cfg["tenants"]["acme"]["budget_usd"])
    return {"answered": len(answered), "billed": len(answered & billed), "unbilled": len(unbilled), "presumed": state.presumed_usd,
            "covered": cost * len(unbilled) <= state.presumed_usd, "ratio": float((state.spent_usd + state.presumed_usd) / cap)}
