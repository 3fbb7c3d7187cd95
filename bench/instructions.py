"""Instructions per request (valgrind's callgrind): AsyncRouter against a bare litellm.acompletion
loop, both against a local provider in another process (so its work is not counted).

    python bench/instructions.py [--requests 100]

Each client runs under callgrind twice, with N and 2N requests; the difference divided by N is
what one request costs, without start-up. Both send the same request (one message, max_tokens 50).
AsyncRouter: one tier, no checks, a SQLite ledger with a budget (holds and bills every request).
Printed: instructions per request and the ratio.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIENT = '''
import asyncio, os, sys
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, {root!r})
N, KIND, URL, LEDGER = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
MSG = [{{"role": "user", "content": "hello there"}}]

async def main():
    if KIND == "bare":
        import litellm
        send = lambda: litellm.acompletion(model="openai/m-small", api_base=URL, api_key="sk-bench", messages=MSG, max_tokens=50, max_retries=0)
        await send()
        for _ in range(N):
            await send()
        return
    from router import AsyncRouter, RouterConfig
    cfg = RouterConfig.from_dict({{"tiers": [{{"name": "small", "models": [{{"model": "openai/m-small", "api_base": URL, "api_key": "sk-bench",
        "input_cost_per_token": "0.0000001", "output_cost_per_token": "0.0000004"}}]}}], "ledger": LEDGER, "checks": [],
        "tenants": {{"acme": {{"budget_usd": "1000", "period": "total"}}}}}})
    async with AsyncRouter(cfg) as router:
        await router.acomplete(MSG, tenant="acme", max_tokens=50)
        for _ in range(N):
            await router.acomplete(MSG, tenant="acme", max_tokens=50)

asyncio.run(main())
'''
PROVIDER = '''
import sys, time
sys.path.insert(0, {root!r})
from router.testing import LocalOpenAIServer
with LocalOpenAIServer() as server:
    print(server.url, flush=True)
    time.sleep(3600)
'''


def instructions(script: Path, n: int, kind: str, url: str, ledger: str, out: Path) -> int:
    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, str(script), str(n), kind, url, ledger],
                   check=True, capture_output=True)
    found = re.search(r"^summary:\s+(\d+)", out.read_text(), re.MULTILINE) or re.search(r"^totals:\s+(\d+)", out.read_text(), re.MULTILINE)
    assert found is not None
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()
    n = args.requests
    with tempfile.TemporaryDirectory() as tmp:
        root = str(ROOT)
        client, provider = Path(tmp) / "client.py", Path(tmp) / "provider.py"
        client.write_text(CLIENT.format(root=root))
        provider.write_text(PROVIDER.format(root=root))
        server = subprocess.Popen([sys.executable, str(provider)], stdout=subprocess.PIPE, text=True)
        try:
            url = server.stdout.readline().strip() if server.stdout else ""
            time.sleep(0.2)
            per = {}
            for kind in ("bare", "router"):
                counts = [instructions(client, k, kind, url, f"sqlite:///{tmp}/{kind}-{k}.db", Path(tmp) / f"{kind}-{k}.out") for k in (n, 2 * n)]
                per[kind] = (counts[1] - counts[0]) / n
                print(f"{'bare litellm.acompletion' if kind == 'bare' else 'AsyncRouter':<26} {per[kind]:>12,.0f} instructions a request", flush=True)
            print(f"AsyncRouter / bare: {per['router'] / per['bare']:.3f}x (target 1.12x)")
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    main()
