"""One tenant's burst of slow requests against another tenant's plain ones, on one gateway process.

    python bench/fairness.py [--burst 1100] [--slow-s 20] [--proxy-python /tmp/proxyvenv/bin/python]

A local provider answers "slow" requests after `--slow-s` seconds (a long generation) and others
after 50 ms. Tenant acme opens `--burst` slow requests at once; 4 s later tenant globex sends plain
requests at 5 a second for 8 s. litellm keeps at most 500 connections to one provider host per
process, so without a bound per tenant globex's requests wait for acme's to end. Printed per gateway:
globex's p50, p99 and worst latency (the provider's 50 ms included) and acme's answers. Gateways, each
in its own process: `tierwise serve` with its default bound (gateway.tenant_in_flight 256), the same
with no bound (`tenant_in_flight: null`, as before the bound), the 15-line Starlette + litellm gateway
of bench/proxy.py, and LiteLLM's proxy when `--proxy-python` names a venv with litellm[proxy]==1.102.4
(one master key for both callers: it has no tenants without its database).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from proxy import KEY, MSG, _port, _ready, start

OTHER = "sk-bench-globex-9876543210"
PROVIDER = '''
import asyncio, os, time
from aiohttp import web
SLOW = float(os.environ["SLOW_S"])
async def chat(request):
    body = await request.json()
    await asyncio.sleep(SLOW if "slow" in str(body["messages"][-1].get("content")) else 0.05)
    return web.json_response({"id": "x", "object": "chat.completion", "created": int(time.time()), "model": body["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}})
app = web.Application()
app.router.add_post("/v1/chat/completions", chat)
web.run_app(app, host="127.0.0.1", port=int(os.environ["PORT"]), backlog=8192, print=None)
'''


def tierwise(provider: str, tmp: Path, bound: int | None) -> tuple[subprocess.Popen[bytes], str]:
    port = _port()
    keys = {"acme": [hashlib.sha256(KEY.encode()).hexdigest()], "globex": [hashlib.sha256(OTHER.encode()).hexdigest()]}
    gateway: dict[str, Any] = {"keys": keys} if bound == 256 else {"keys": keys, "tenant_in_flight": bound}
    cfg = {"tiers": [{"name": "small", "models": [{"model": "openai/m-small", "api_base": provider, "api_key": "sk-bench",
                                                   "input_cost_per_token": "0.0000001", "output_cost_per_token": "0.0000004"}]}],
           "ledger": f"sqlite:///{tmp / f'ledger-{port}.db'}", "checks": [], "gateway": gateway}
    path = tmp / f"tierwise-{port}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "router.cli", "serve", "--config", str(path), "--port", str(port)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), f"http://127.0.0.1:{port}"


async def run(url: str, burst: int, other_key: str) -> tuple[list[float], int, int]:
    """Globex's latencies, and acme's answered and refused requests."""
    import aiohttp

    plain = {"model": "tierwise", "messages": MSG, "max_tokens": 50}
    slow = {"model": "tierwise", "messages": [{"role": "user", "content": "slow: a long answer"}], "max_tokens": 50}
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as flood, \
            aiohttp.ClientSession(timeout=timeout) as calm:
        await _ready(calm, url)

        async def one(session: Any, key: str, body: dict[str, Any]) -> tuple[int, float]:
            t = time.perf_counter()
            async with session.post(f"{url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}) as resp:
                await resp.read()
                return resp.status, time.perf_counter() - t

        async def paced(delay: float) -> tuple[int, float]:
            await asyncio.sleep(delay)
            return await one(calm, other_key, plain)

        acme = [asyncio.create_task(one(flood, KEY, slow)) for _ in range(burst)]
        globex = await asyncio.gather(*(paced(4.0 + i / 5) for i in range(40)))
        done = await asyncio.gather(*acme, return_exceptions=True)
    answered = sum(1 for d in done if not isinstance(d, BaseException) and d[0] == 200)
    refused = sum(1 for d in done if not isinstance(d, BaseException) and d[0] == 429)
    assert all(status == 200 for status, _ in globex), [s for s, _ in globex]
    return [took for _, took in globex], answered, refused


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--burst", type=int, default=1100)
    parser.add_argument("--slow-s", type=float, default=20.0)
    parser.add_argument("--proxy-python", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        port = _port()
        (tmp / "provider.py").write_text(PROVIDER)
        provider = subprocess.Popen([sys.executable, str(tmp / "provider.py")], env={"PORT": str(port), "SLOW_S": str(args.slow_s),
                                    "PATH": "/usr/bin:/bin"})
        base = f"http://127.0.0.1:{port}/v1"
        gateways: list[tuple[str, Any, str]] = [
            ("tierwise (tenant_in_flight 256)", lambda: tierwise(base, tmp, 256), OTHER),
            ("tierwise (no bound, as before)", lambda: tierwise(base, tmp, None), OTHER),
            ("Starlette + litellm", lambda: start("tiny", base, tmp, ""), KEY)]
        if args.proxy_python:
            gateways.append(("LiteLLM proxy 1.102.4", lambda: start("litellm proxy", base, tmp, args.proxy_python), KEY))
        print(f"acme opens {args.burst:,} requests the provider answers in {args.slow_s:g} s; globex sends 5 plain requests/s for 8 s")
        try:
            for name, launch, other_key in gateways:
                proc, url = launch()
                try:
                    lat, answered, refused = asyncio.run(run(url, args.burst, other_key))
                finally:
                    proc.terminate()
                    proc.wait(10)
                lat.sort()
                print(f"{name:<32} globex p50 {statistics.median(lat) * 1e3:8.0f} ms  p99 {lat[int(len(lat) * 0.99)] * 1e3:8.0f} ms"
                      f"  worst {lat[-1] * 1e3:8.0f} ms | acme answered {answered:,}, refused {refused:,}", flush=True)
        finally:
            provider.terminate()


if __name__ == "__main__":
    main()
