"""The gateway and AsyncRouter against a bare litellm.acompletion loop, in the same run.

    python bench/gateway.py [--requests 500] [--concurrency 64] [--backends sqlite,postgres]

A local OpenAI-compatible server answers every call after 50 ms. Each variant sends the same
requests at the same concurrency; printed: throughput (requests/s), its ratio to the bare loop,
p50 and p99 latency and the p50 added over the bare loop.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _ledgers import fresh_ledger

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

KEY = "tw-bench-key"
MSG = [{"role": "user", "content": "hello there"}]


async def _drive(send: Any, n: int, concurrency: int) -> tuple[float, list[float]]:
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def one() -> None:
        async with gate:
            t = time.perf_counter()
            await send()
            latencies.append(time.perf_counter() - t)

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    return n / (time.perf_counter() - started), latencies


def _config(provider: str, ledger: str) -> dict[str, Any]:
    model = {"model": "openai/m-small", "api_base": provider, "api_key": "sk-bench", "input_cost_per_token": "0.0000001",
             "output_cost_per_token": "0.0000004"}
    return {"tiers": [{"name": "small", "models": [model]}], "ledger": ledger, "checks": [],
            "tenants": {"acme": {"budget_usd": "1000", "period": "total"}},
            "gateway": {"keys": {"acme": [hashlib.sha256(KEY.encode()).hexdigest()]}}}


async def bare(provider: str, n: int, c: int) -> tuple[float, list[float]]:
    import litellm

    async def send() -> None:
        await litellm.acompletion(model="openai/m-small", api_base=provider, api_key="sk-bench", messages=MSG, max_retries=0)

    await send()  # warm: the same first-call costs as the others get
    return await _drive(send, n, c)


async def async_router(cfg: dict[str, Any], n: int, c: int) -> tuple[float, list[float]]:
    from router import AsyncRouter, RouterConfig

    async with AsyncRouter(RouterConfig.from_dict(cfg)) as router:
        async def send() -> None:
            await router.acomplete(MSG, tenant="acme", max_tokens=50)

        await send()
        return await _drive(send, n, c)


def start_gateway(cfg: dict[str, Any], tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`tierwise serve` in its own process, as it runs in production."""
    path = tmp / f"{uuid.uuid4().hex}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "router.cli", "serve", "--config", str(path), "--port", str(port)])
    return proc, f"http://127.0.0.1:{port}"


async def gateway(url: str, n: int, c: int) -> tuple[float, list[float]]:
    # aiohttp, not httpx, drives the load: httpx's client tops out near 110 requests/s here, which
    # measured the client, not the gateway (a Starlette app that only sleeps 50 ms gave the same).
    import aiohttp

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=c)) as session:
        for _ in range(300):
            try:
                async with session.get(f"{url}/healthz") as ready:
                    if ready.status == 200:
                        break
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
        body = {"model": "tierwise", "messages": MSG, "max_tokens": 50}
        headers = {"Authorization": f"Bearer {KEY}"}

        async def send() -> None:
            async with session.post(f"{url}/v1/chat/completions", json=body, headers=headers) as resp:
                resp.raise_for_status()
                await resp.read()

        await send()
        return await _drive(send, n, c)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    from router.testing import LocalOpenAIServer

    with LocalOpenAIServer() as server, tempfile.TemporaryDirectory() as tmpdir:
        server.scripts["m-small"].extend([{"content": "ok", "delay": 0.05}] * (args.requests * 12))
        tmp = Path(tmpdir)
        results = {"bare litellm.acompletion": asyncio.run(bare(server.url, args.requests, args.concurrency))}
        for backend in args.backends.split(","):
            for name in ("gateway", "AsyncRouter"):
                with fresh_ledger(backend, tmp) as url:
                    cfg = _config(server.url, url)
                    if name == "gateway":
                        proc, gw = start_gateway(cfg, tmp)
                        try:
                            results[f"{name} ({backend})"] = asyncio.run(gateway(gw, args.requests, args.concurrency))
                        finally:
                            proc.terminate()
                            proc.wait(10)
                    else:
                        results[f"{name} ({backend})"] = asyncio.run(async_router(cfg, args.requests, args.concurrency))
    base_rate, base_lat = results["bare litellm.acompletion"]
    base_p50 = statistics.median(base_lat)
    print(f"{args.requests} requests at {args.concurrency} concurrent, provider replies after 50 ms")
    print(f"{'variant':<28} {'req/s':>7} {'ratio':>6} {'p50 ms':>7} {'p99 ms':>7} {'added p50 ms':>12}")
    for name, (rate, lat) in results.items():
        p50, p99 = statistics.median(lat), statistics.quantiles(lat, n=100)[98]
        print(f"{name:<28} {rate:>7.1f} {rate / base_rate:>6.2f} {p50 * 1000:>7.1f} {p99 * 1000:>7.1f} {(p50 - base_p50) * 1000:>12.1f}")


if __name__ == "__main__":
    main()
