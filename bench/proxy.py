"""`tierwise serve` against LiteLLM's proxy (the gateway a team would run instead) and a 15-line
Starlette + litellm gateway, each in its own process, in front of the same local provider (50 ms
replies), driven by the same aiohttp client; interleaved, several rounds.

    python3 -m venv /tmp/proxyvenv && /tmp/proxyvenv/bin/pip install 'litellm[proxy]==1.102.4'
    python bench/proxy.py --proxy-python /tmp/proxyvenv/bin/python [--requests 1000] [--rounds 3]

Printed per gateway and round: throughput at 64 concurrent, the server's CPU seconds per request
(its process and children, from /proc), and at a fixed low rate (20 requests/s, below
saturation) the p50 and p99 latency added over calling the provider directly. tierwise routes
(one tier, no checks), holds and bills every request in its SQLite ledger; the proxy runs without
a database (no spend tracking, which needs PostgreSQL), so it does less work per request.
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
from pathlib import Path
from typing import Any

import yaml
from _procs import family

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

KEY = "sk-bench-0123456789"
MSG = [{"role": "user", "content": "hello there"}]
TINY = '''
import os, litellm, uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
BASE = os.environ["PROVIDER"]
async def chat(request):
    body = await request.json()
    resp = await litellm.acompletion(model="openai/m-small", api_base=BASE, api_key="sk-bench", messages=body["messages"],
                                     max_tokens=body.get("max_tokens"))
    return JSONResponse(resp.model_dump())
app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])
uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning")
'''


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a process and its live descendants (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    return sum((int(fields[11]) + int(fields[12])) / tick for fields in family(pid).values())


def start(kind: str, provider: str, tmp: Path, proxy_python: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _port()
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "PROVIDER": provider, "PORT": str(port)}
    if kind == "tierwise":
        cfg = {"tiers": [{"name": "small", "models": [{"model": "openai/m-small", "api_base": provider, "api_key": "sk-bench",
                                                       "input_cost_per_token": "0.0000001", "output_cost_per_token": "0.0000004"}]}],
               "ledger": f"sqlite:///{tmp / f'ledger-{port}.db'}", "checks": [],
               "gateway": {"keys": {"acme": [hashlib.sha256(KEY.encode()).hexdigest()]}}}
        path = tmp / f"tierwise-{port}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        cmd = [sys.executable, "-m", "router.cli", "serve", "--config", str(path), "--port", str(port)]
    elif kind == "litellm proxy":
        path = tmp / f"proxy-{port}.yaml"
        path.write_text(yaml.safe_dump({"model_list": [{"model_name": "tierwise", "litellm_params": {
            "model": "openai/m-small", "api_base": provider, "api_key": "sk-bench"}}], "general_settings": {"master_key": KEY}}))
        cmd = [proxy_python, "-m", "litellm.proxy.proxy_cli", "--config", str(path), "--port", str(port), "--host", "127.0.0.1"]
    else:
        path = tmp / "tiny.py"
        path.write_text(TINY)
        cmd = [sys.executable, str(path)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, f"http://127.0.0.1:{port}"


async def _ready(session: Any, url: str) -> None:
    import aiohttp

    body = {"model": "tierwise", "messages": MSG, "max_tokens": 50}
    for _ in range(600):
        try:
            async with session.post(f"{url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"}) as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit(f"{url} did not start")


async def load(url: str, n: int, concurrency: int, rate: float | None) -> tuple[float, list[float]]:
    """n requests: `concurrency` at once (rate None), or started at a fixed `rate` a second."""
    import aiohttp

    body = {"model": "tierwise", "messages": MSG, "max_tokens": 50}
    latencies: list[float] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        await _ready(session, url)
        gate = asyncio.Semaphore(concurrency)

        async def one(delay: float) -> None:
            await asyncio.sleep(delay)
            async with gate:
                t = time.perf_counter()
                async with session.post(f"{url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"}) as resp:
                    resp.raise_for_status()
                    await resp.read()
                latencies.append(time.perf_counter() - t)

        started = time.perf_counter()
        await asyncio.gather(*(one(0.0 if rate is None else i / rate) for i in range(n)))
        return n / (time.perf_counter() - started), latencies


async def direct(provider: str, n: int, rate: float) -> list[float]:
    """The provider called straight (the 50 ms every gateway adds to)."""
    import aiohttp

    out: list[float] = []
    async with aiohttp.ClientSession() as session:
        async def one(delay: float) -> None:
            await asyncio.sleep(delay)
            t = time.perf_counter()
            async with session.post(f"{provider}/chat/completions", json={"model": "m-small", "messages": MSG}) as resp:
                await resp.read()
            out.append(time.perf_counter() - t)

        await asyncio.gather(*(one(i / rate) for i in range(n)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--proxy-python", required=True, help="python of a venv with litellm[proxy]==1.102.4")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from router.testing import LocalOpenAIServer

    kinds = ["tierwise", "litellm proxy", "starlette + litellm"]
    rows: dict[str, list[tuple[float, float, float, float]]] = {k: [] for k in kinds}
    with LocalOpenAIServer(responder=lambda _m, _msgs: {"content": "ok", "delay": 0.05}) as server, tempfile.TemporaryDirectory() as tmp:
        low = 200
        base = statistics.median(asyncio.run(direct(server.url, low, args.rate)))
        for rnd in range(args.rounds):
            for kind in kinds if rnd % 2 == 0 else kinds[::-1]:  # interleaved, the order turned each round
                proc, url = start(kind, server.url, Path(tmp), args.proxy_python)
                try:
                    asyncio.run(load(url, 20, 4, None))  # warm
                    cpu0 = cpu_seconds(proc.pid)
                    rate, _ = asyncio.run(load(url, args.requests, args.concurrency, None))
                    cpu = (cpu_seconds(proc.pid) - cpu0) / args.requests
                    _, lat = asyncio.run(load(url, low, args.concurrency, args.rate))
                finally:
                    proc.terminate()
                    proc.wait(20)
                p50, p99 = statistics.median(lat), statistics.quantiles(lat, n=100)[98]
                rows[kind].append((rate, cpu, p50 - base, p99 - base))
                print(f"round {rnd + 1} {kind:<22} {rate:7.1f} req/s, {cpu * 1000:6.2f} ms CPU/request, added p50 {(p50 - base) * 1000:6.1f} ms,"
                      f" p99 {(p99 - base) * 1000:6.1f} ms", flush=True)
    print(f"\nprovider direct p50 {base * 1000:.1f} ms; ratios of tierwise to the proxy per round:")
    for i, (t, p) in enumerate(zip(rows["tierwise"], rows["litellm proxy"], strict=True)):
        print(f"  round {i + 1}: throughput {t[0] / p[0]:.2f}x, CPU per request {t[1] / p[1]:.2f}x, added p50 {t[2] * 1000:.1f} vs "
              f"{p[2] * 1000:.1f} ms, p99 {t[3] * 1000:.1f} vs {p[3] * 1000:.1f} ms")


if __name__ == "__main__":
    main()
