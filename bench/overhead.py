"""What Router.complete adds over a bare litellm.completion (both with mock_response), and import time.

    python bench/overhead.py [--blocks 8] [--n 300]

Both sides run in this process on the same prompt, in alternating blocks of n requests. The router
side includes validation, classification, policy, the checks and its SQLite ledger writes.
Three figures:
- throughput: wall and CPU time (all threads) per request, medians over blocks. litellm finishes
  each call's logging on a background thread; its CPU is counted on both sides;
- the router's own work: Router.complete with a client that returns a prebuilt ModelResponse;
- import time in fresh processes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def import_times(repeat: int = 7) -> tuple[float, float]:
    code = (
        "import time; t = time.perf_counter(); import router; a = time.perf_counter() - t; "
        "from router import Router, RouterConfig; print(a, time.perf_counter() - t)"
    )
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split() for _ in range(repeat)]
    return statistics.median(float(r[0]) for r in runs), statistics.median(float(r[1]) for r in runs)


def block(fn: Callable[[], Any], n: int) -> tuple[float, float]:
    """(wall, cpu) seconds per request over n requests, background threads drained."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        fn()
    wall = time.perf_counter() - wall0
    time.sleep(0.3)  # litellm's logging threads finish their share; process_time counts them, not the sleep
    return wall / n, (time.process_time() - cpu0) / n


def own_work(router: Any, messages: list[dict[str, str]], model: str, n: int, **kwargs: Any) -> tuple[float, float]:
    """Router.complete with the litellm call taken out: p50 and p99 microseconds."""
    import litellm

    response = litellm.completion(model=model, messages=messages, mock_response="ok")
    real = router.client.complete
    router.client.complete = lambda spec, msgs, kwargs: (response, 1)
    try:
        times = []
        for _ in range(n):
            t = time.perf_counter()
            router.complete(messages, tenant="acme", **kwargs)
            times.append(time.perf_counter() - t)
    finally:
        router.client.complete = real
    times.sort()
    return statistics.median(times) * 1e6, times[int(len(times) * 0.99)] * 1e6


def learning_overhead(tmp: str, messages: list[dict[str, str]], blocks: int) -> None:
    """Router.complete's own work with the learning loop off, remembering requests for feedback, and
    with shadow labels configured (requests not sampled), alternating blocks in the same run."""
    from router import Router, RouterConfig

    variants = {
        "learning off (remember 0)": {"remember": 0},
        "feedback memory (default)": {},
        "shadow labels on, request not sampled": {"shadow_rate": 1e-9, "judge": "flash", "budget_usd": "5"},
    }
    routers = {name: Router(RouterConfig.from_dict({"ledger": f"sqlite:///{Path(tmp) / f'learn-{i}.db'}", "learning": cfg}))
               for i, (name, cfg) in enumerate(variants.items())}
    model = next(iter(routers.values())).config.tiers[0].models[0].model
    p50s: dict[str, list[float]] = {name: [] for name in routers}
    for _ in range(blocks):
        for name, router in routers.items():
            p50s[name].append(own_work(router, messages, model, 400)[0])
    base = statistics.median(p50s["learning off (remember 0)"])
    print("learning loop: the router's own work, p50 (median over blocks)")
    for name, values in p50s.items():
        print(f"  {name:<40} {statistics.median(values):6.0f} us (added {statistics.median(values) - base:+.0f} us)")
    for router in routers.values():
        router.close()


def large_requests(tmp: str) -> None:
    """A 1 MB prompt and a 10,000-turn conversation: the router's own work with a budget and without."""
    from router import Router, RouterConfig

    big = [{"role": "user", "content": "word " * 200_000}]
    turns = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"turn number {i}"} for i in range(10_000)]
    print("large requests: the router's own work, p50 of 30 (litellm call replaced by a prebuilt response)")
    for name, messages in (("1 MB prompt", big), ("10,000 turns", turns)):
        figures = []
        for budget in (False, True):
            config = RouterConfig.from_dict({"ledger": f"sqlite:///{Path(tmp) / f'large-{budget}-{len(messages)}.db'}",
                                             "tenants": {"acme": {"budget_usd": "1000000", "period": "month"}} if budget else {}})
            with Router(config) as router:
                figures.append(own_work(router, messages, router.config.tiers[0].models[0].model, 30, max_tokens=100)[0])
        print(f"  {name:<14} no budget {figures[0] / 1000:6.2f} ms, with a budget {figures[1] / 1000:6.2f} ms: added {(figures[1] - figures[0]) / 1000:+.2f} ms")


FIRST_CALL = """
import os, resource, tempfile, time
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
from router import Router, RouterConfig
tmp = tempfile.mkdtemp()
plain = Router(RouterConfig.from_dict({"ledger": f"sqlite:///{tmp}/a.db"}))
budgeted = Router(RouterConfig.from_dict({"ledger": f"sqlite:///{tmp}/b.db", "tenants": {"acme": {"budget_usd": "100", "period": "day"}}}))
msgs = [{"role": "user", "content": "Summarise the plot of Hamlet in two sentences, please."}]
plain.complete(msgs, tenant="acme", mock_response="ok")  # litellm's own first-call work, outside the measure
def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
t, m = time.perf_counter(), rss()
plain.complete(msgs, tenant="acme", mock_response="ok")
plain_s, plain_m = time.perf_counter() - t, rss() - m
t, m = time.perf_counter(), rss()
budgeted.complete(msgs, tenant="acme", mock_response="ok")
print(plain_s, plain_m, time.perf_counter() - t, rss() - m)
"""


def first_budgeted_call(repeat: int = 5) -> None:
    """In fresh processes: the first budgeted request against a second unbudgeted one (time and RSS)."""
    runs = [list(map(float, subprocess.run([sys.executable, "-c", FIRST_CALL], capture_output=True, text=True, check=True).stdout.split()))
            for _ in range(repeat)]
    p_s, p_m, b_s, b_m = (statistics.median(r[k] for r in runs) for k in range(4))
    print(f"first budgeted request in a fresh process: {b_s * 1000:.1f} ms and +{b_m / 2**20:.1f} MiB resident, against "
          f"{p_s * 1000:.1f} ms and +{p_m / 2**20:.1f} MiB for an unbudgeted one (median of {repeat})")


def postgres_overhead(admin_url: str = "postgresql://postgres@127.0.0.1:5432/postgres", n: int = 400) -> None:
    """The router's own work on a PostgreSQL ledger: a tenant with a budget (hold + entry) against one without (entry only)."""
    import uuid

    try:
        import psycopg
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=3)
    except Exception as exc:  # noqa: BLE001 - no server here: say so and go on
        print(f"PostgreSQL: skipped ({type(exc).__name__})")
        return
    from router import Router, RouterConfig

    name = f"tierwise_overhead_{uuid.uuid4().hex[:8]}"
    messages = [{"role": "user", "content": "Summarise the plot of Hamlet in two sentences, please."}]
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = admin_url.rsplit("/", 1)[0] + "/" + name
            figures = {}
            for budget in (False, True):
                config = RouterConfig.from_dict({"ledger": url, "tenants": {"acme": {"budget_usd": "1000000", "period": "month"}} if budget else {}})
                with Router(config) as router:
                    model = router.config.tiers[0].models[0].model
                    own_work(router, messages, model, 50)
                    figures[budget] = own_work(router, messages, model, n)
            (p0, q0), (p1, q1) = figures[False], figures[True]
            print(f"PostgreSQL ledger, the router's own work: no budget p50 {p0 / 1000:.2f} ms (p99 {q0 / 1000:.2f}), "
                  f"with a budget p50 {p1 / 1000:.2f} ms (p99 {q1 / 1000:.2f}): a budget adds {(p1 - p0) / 1000:+.2f} ms at p50")
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--blocks", type=int, default=8)
    parser.add_argument("--n", type=int, default=300)
    args = parser.parse_args()

    import litellm

    from router import Router, RouterConfig

    messages = [{"role": "user", "content": "Summarise the plot of Hamlet in two sentences, please."}]
    with tempfile.TemporaryDirectory() as tmp:
        for budget in (False, True):
            config = RouterConfig.from_dict({
                "ledger": f"sqlite:///{Path(tmp) / f'bench-{budget}.db'}",
                "tenants": {"acme": {"budget_usd": "1000000", "period": "month"}} if budget else {},
            })
            router = Router(config)
            model = router.config.tiers[0].models[0].model

            def bare(model: str = model) -> None:
                litellm.completion(model=model, messages=messages, mock_response="ok")

            def routed(router: Router = router) -> None:
                router.complete(messages, tenant="acme", mock_response="ok")

            block(bare, 50), block(routed, 50)  # warm-up
            runs = [(block(bare, args.n), block(routed, args.n)) for _ in range(args.blocks)]
            bw = statistics.median(b[0] for b, _ in runs) * 1e6
            bc = statistics.median(b[1] for b, _ in runs) * 1e6
            rw = statistics.median(r[0] for _, r in runs) * 1e6
            rc = statistics.median(r[1] for _, r in runs) * 1e6
            label = "tenant with a budget (reserve + settle)" if budget else "tenant without a budget (settle only)"
            print(f"{label}:")
            print(f"  wall per request: bare litellm {bw:.0f} us, Router.complete {rw:.0f} us -> added {rw - bw:.0f} us ({rw / bw:.2f}x)")
            print(f"  CPU per request:  bare litellm {bc:.0f} us, Router.complete {rc:.0f} us -> added {rc - bc:.0f} us ({rc / bc:.2f}x)")
            p50, p99 = own_work(router, messages, model, 2000)
            print(f"  the router's own work (litellm call replaced by a prebuilt response): p50 {p50:.0f} us, p99 {p99:.0f} us")
            router.close()
        learning_overhead(tmp, messages, args.blocks)
        large_requests(tmp)
    first_budgeted_call()
    postgres_overhead()
    a, full = import_times()
    print(f"import router: {a * 1000:.1f} ms; from router import Router, RouterConfig: {full * 1000:.0f} ms (median of 7 fresh processes)")


if __name__ == "__main__":
    main()
