"""What one caller's hostile request does to everyone else's requests on the same gateway process.

    python bench/neighbours.py [--messages 20000] [--body-mb 60] [--proxy-python /tmp/proxyvenv/bin/python]

Each gateway (`tierwise serve`; a 15-line Starlette + litellm gateway, what a team writes first; and
LiteLLM's proxy when `--proxy-python` names a venv with litellm[proxy]==1.102.4, see bench/proxy.py)
runs in its own process in front of the same local provider (50 ms replies). Plain requests arrive
at 20 a second for 6 s; after 1 s one caller sends a hostile request: a conversation of `--messages`
short messages (about 0.7 MB for 20,000), then, in a second window, a body of `--body-mb` MB.
Printed per gateway and window: the hostile request's status and seconds, and the plain requests'
p50, p99 and worst latency (the provider's 50 ms included) against a window with no hostile request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from proxy import KEY, MSG, _ready, start

RATE, SECONDS = 20.0, 6.0


def hostile_bodies(messages: int, body_mb: float) -> dict[str, bytes | None]:
    many = [{"role": "user" if i % 2 == 0 else "assistant", "content": "hi"} for i in range(messages)] + [{"role": "user", "content": "hi"}]
    big = b'{"model": "tierwise", "messages": [{"role": "user", "content": "' + b"a" * int(body_mb * 2**20) + b'"}]}'
    return {"none": None, f"{messages:,} messages": json.dumps({"model": "tierwise", "messages": many}).encode(), f"{body_mb:g} MB body": big}


async def window(url: str, hostile: bytes | None) -> tuple[list[float], str]:
    """Plain requests at RATE for SECONDS, the hostile one sent after 1 s: their latencies, and what it got."""
    import aiohttp

    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    body = {"model": "tierwise", "messages": MSG, "max_tokens": 50}
    latencies: list[float] = []
    outcome = "-"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as session:
        await _ready(session, url)

        async def plain(delay: float) -> None:
            await asyncio.sleep(delay)
            t = time.perf_counter()
            async with session.post(f"{url}/v1/chat/completions", json=body, headers=headers) as resp:
                await resp.read()
            latencies.append(time.perf_counter() - t)

        async def attack() -> None:
            nonlocal outcome
            if hostile is None:
                return
            await asyncio.sleep(1.0)
            t = time.perf_counter()
            try:
                async with session.post(f"{url}/v1/chat/completions", data=hostile, headers=headers) as resp:
                    await resp.read()
                    outcome = f"{resp.status} in {time.perf_counter() - t:.1f} s"
            except aiohttp.ClientError as exc:
                outcome = f"{type(exc).__name__} in {time.perf_counter() - t:.1f} s"

        await asyncio.gather(attack(), *(plain(i / RATE) for i in range(int(RATE * SECONDS))))
    return latencies, outcome


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--body-mb", type=float, default=60.0)
    parser.add_argument("--proxy-python", help="python of a venv with litellm[proxy]==1.102.4 (else the proxy is left out)")
    args = parser.parse_args()
    from router.testing import LocalOpenAIServer

    kinds = ["tierwise", "tiny", *(["litellm proxy"] if args.proxy_python else [])]
    bodies = hostile_bodies(args.messages, args.body_mb)
    print(f"plain requests at {RATE:g}/s for {SECONDS:g} s; provider replies after 50 ms; latency in ms")
    print(f"{'gateway':<15} {'hostile request':<18} {'its outcome':<20} {'p50':>6} {'p99':>7} {'worst':>7}")
    with LocalOpenAIServer() as server, tempfile.TemporaryDirectory() as tmpdir:
        server.scripts["m-small"].extend([{"content": "ok", "delay": 0.05}] * 10_000)
        for kind in kinds:
            proc, url = start(kind, server.url, Path(tmpdir), args.proxy_python or "")
            try:
                for name, hostile in bodies.items():
                    lat, outcome = asyncio.run(window(url, hostile))
                    p50, p99 = statistics.median(lat), statistics.quantiles(lat, n=100)[98]
                    print(f"{kind:<15} {name:<18} {outcome:<20} {p50 * 1000:>6.0f} {p99 * 1000:>7.0f} {max(lat) * 1000:>7.0f}", flush=True)
            finally:
                proc.terminate()
                proc.wait(10)


if __name__ == "__main__":
    main()
