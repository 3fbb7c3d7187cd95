"""Budgets under concurrency: overspend and the share of what the cap fits that is served.

    python bench/budgets.py [--backends sqlite,postgres] [--requests 200]

Each cell sends 200 requests for one tenant whose cap fits 47 of them, through a local
OpenAI-compatible server (0 s or 3 s replies), from 200 threads, 4 processes x 50 threads, or 200
asyncio tasks; processes start cold (sending at once) or warm (Router built, then a common start).
Prints, per cell: served, refused, spend against the cap, and served / 47. `--attack` adds the cells
of the attack findings (bench/_attack_cells.py): starved and paused processes, a 6 s provider, a clock
30 s behind, and hosts with their own homes on one PostgreSQL ledger killed with SIGKILL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _ledgers import fresh_ledger

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

FITS = 47
MSG = [{"role": "user", "content": "hello there"}]
ANSWER = "an answer of twenty tokens, as long as the max_tokens=20 that it was held for.."  # 80 characters: 20 tokens


def config(server_url: str, ledger: str, cap: str) -> dict[str, Any]:
    model = {"model": "openai/m-small", "api_base": server_url, "api_key": "sk-bench", "input_cost_per_token": "0.0000001",
             "output_cost_per_token": "0.0000004"}
    return {"tiers": [{"name": "small", "models": [model]}], "ledger": ledger, "timeout_s": 60,
            "tenants": {"acme": {"budget_usd": cap, "period": "total"}}, "checks": []}


def run_threads(cfg: dict[str, Any], n: int, start_at: float = 0.0, options: dict[str, Any] | None = None) -> tuple[int, int]:
    from router import BudgetExceeded, Router, RouterConfig
    from router.ledger import open_ledger

    options = options or {}
    served, refused = [0], [0]
    lock = threading.Lock()
    config = RouterConfig.from_dict(cfg)
    skew = float(options.get("skew", 0.0))
    ledger = open_ledger(config.ledger_url(), config.budget_for, clock=lambda: time.time() + skew) if skew else None
    with Router(config, **({"ledger": ledger} if ledger else {})) as router:
        def one() -> None:
            if start_at:
                time.sleep(max(0.0, start_at - time.time()))
            try:
                rid = router.complete(MSG, tenant="acme", max_tokens=20).route.request_id
                with lock:
                    served[0] += 1
                    if options.get("print_each"):
                        print(f"rid {rid}", flush=True)
            except BudgetExceeded:
                with lock:
                    refused[0] += 1

        threads = [threading.Thread(target=one) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return served[0], refused[0]


def run_async(cfg: dict[str, Any], n: int) -> tuple[int, int]:
    from router import AsyncRouter, BudgetExceeded, RouterConfig

    async def main() -> tuple[int, int]:
        async with AsyncRouter(RouterConfig.from_dict(cfg)) as router:
            async def one() -> bool:
                try:
                    await router.acomplete(MSG, tenant="acme", max_tokens=20)
                    return True
                except BudgetExceeded:
                    return False

            results = await asyncio.gather(*(one() for _ in range(n)))
        return sum(results), n - sum(results)

    return asyncio.run(main())


def run_processes(cfg: dict[str, Any], n: int, warm: bool) -> tuple[int, int]:
    start_at = time.time() + (8.0 if warm else 0.0)  # warm: every process builds its Router, then all start together
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", json.dumps(cfg), str(n // 4), str(start_at if warm else 0)],
                              stdout=subprocess.PIPE, text=True) for _ in range(4)]
    totals = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    return sum(t[0] for t in totals), sum(t[1] for t in totals)


def _cell_cost(server_url: str, tmp: Path) -> Decimal:
    """What one request costs through this server (its reported usage at these prices)."""
    from router import Router, RouterConfig

    cfg = config(server_url, f"sqlite:///{tmp / 'probe.db'}", "1000")
    with Router(RouterConfig.from_dict(cfg)) as router:
        return router.complete(MSG, tenant="acme", max_tokens=20).route.cost_usd


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--worker", nargs="+")
    parser.add_argument("--attack", action="store_true", help="only the attack cells")
    args = parser.parse_args()
    if args.worker:
        cfg, n, start_at = json.loads(args.worker[0]), int(args.worker[1]), float(args.worker[2])
        print(json.dumps(run_threads(cfg, n, start_at, json.loads(args.worker[3]) if len(args.worker) > 3 else None)))
        return
    if args.attack:
        attack(args)
        return
    _grid(args, {0.0: ["threads", "4 processes, cold", "4 processes, warm", "async tasks"], 3.0: ["threads", "4 processes, cold",
                                                                                                     "4 processes, warm", "async tasks"]})


def _grid(args: argparse.Namespace, modes: dict[float, list[str]], runners: dict[str, Any] | None = None) -> None:
    """Each (provider delay, backend, mode) cell on a fresh ledger, against one local server per delay."""
    from router.testing import LocalOpenAIServer

    print(f"{'backend':<9} {'mode':<22} {'provider':>8} {'served':>6} {'refused':>7} {'spent/cap':>9} {'served/fits':>11} {'seconds':>7}")
    for delay, names in modes.items():
        with LocalOpenAIServer(responder=lambda _m, _msgs: ANSWER) as server, tempfile.TemporaryDirectory() as tmpdir:
            tmp = Path(tmpdir)
            if delay:
                server.scripts["m-small"].extend([{"content": ANSWER, "delay": delay}] * (args.requests * 12))
            cap = str(_cell_cost(server.url, tmp) * FITS)
            for backend in args.backends.split(","):
                for mode in names:
                    with fresh_ledger(backend, tmp) as url:
                        _cell(backend, mode, delay, config(server.url, url, cap), url, cap, args.requests, (runners or {}).get(mode))


def attack(args: argparse.Namespace) -> None:
    from _attack_cells import killed_hosts, paused, skewed, starved

    from router.testing import LocalOpenAIServer

    _grid(args, {0.0: ["starved, cold", "2 paused 3 s", "clock 30 s behind"], 6.0: ["4 processes, cold", "4 processes, warm"]},
          {"starved, cold": starved, "2 paused 3 s": paused, "clock 30 s behind": skewed})
    if "postgres" not in args.backends:
        return
    with LocalOpenAIServer(responder=lambda _m, _msgs: ANSWER) as server, tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        server.scripts["m-small"].extend([{"content": ANSWER, "delay": 0.2 * (i % 10)} for i in range(args.requests * 12)])
        cost = _cell_cost(server.url, tmp)
        print("\nhosts with their own homes on one PostgreSQL ledger, SIGKILLed mid-burst; host 0 restarted, hosts 1-3 never")
        print(f"{'cap fits':>8} {'flush_s':>7} {'answered':>8} {'billed':>6} {'unbilled':>8} {'presumed $':>12} {'unbilled within presumed':>24} "
              f"{'(spent+presumed)/cap':>20}")
        for fits, flush in ((FITS, 0.05), (4 * FITS, 0.05), (40 * FITS, 5.0)):  # 5 s: bills wait in the outboxes when the hosts die
            with fresh_ledger("postgres", tmp) as url:
                r = killed_hosts({**config(server.url, url, str(cost * fits)), "ledger_flush_s": flush}, args.requests, url, tmp, cost)
            print(f"{fits:>8} {flush:>7} {r['answered']:>8} {r['billed']:>6} {r['unbilled']:>8} {format(r['presumed'], 'f'):>12} "
                  f"{'yes' if r['covered'] else 'NO':>24} {r['ratio']:>20.3f}", flush=True)


def _cell(backend: str, mode: str, delay: float, cfg: dict[str, Any], url: str, cap: str, n: int, run: Any = None) -> None:
    from router.ledger import open_ledger

    started = time.monotonic()
    if run is not None:
        served, refused = run(cfg, n)
    elif mode == "threads":
        served, refused = run_threads(cfg, n)
    elif mode == "async tasks":
        served, refused = run_async(cfg, n)
    else:
        served, refused = run_processes(cfg, n, warm=mode.endswith("warm"))
    seconds = time.monotonic() - started
    ledger = open_ledger(url, lambda _t: None)
    spent = sum((e.cost_usd for e in ledger.entries("acme")), Decimal(0))
    ledger.close()
    print(f"{backend:<9} {mode:<22} {delay:>7.0f}s {served:>6} {refused:>7} {float(spent / Decimal(cap)):>9.3f} "
          f"{served / FITS:>11.2f} {seconds:>7.1f}", flush=True)

if __name__ == "__main__":
    main()
