"""AsyncRouter behind an aiohttp endpoint; the tenant comes from the X-Tenant header.

Runs offline as written: the example starts the app on 127.0.0.1, sends it two requests with
aiohttp's client, prints the answers and stops. OFFLINE = True uses litellm's mock_response.
"""

import asyncio

from aiohttp import ClientSession, web

from router import AsyncRouter, BudgetExceeded, InvalidMessagesError, RouterConfig

OFFLINE = True
router = AsyncRouter(RouterConfig(ledger="sqlite://:memory:", tenants={"acme": {"budget_usd": "1.00", "period": "day"}}))


async def chat(request: web.Request) -> web.Response:
    body = await request.json()
    extra = {"mock_response": "Hello from tierwise!"} if OFFLINE else {}
    try:
        resp = await router.acomplete(body.get("messages"), tenant=request.headers.get("X-Tenant", "anonymous"), max_tokens=200, **extra)
    except InvalidMessagesError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    except BudgetExceeded as exc:
        return web.json_response({"error": str(exc)}, status=402)
    route = resp.route
    return web.json_response({"answer": resp.choices[0].message.content, "tier": route.tier, "cost_usd": str(route.cost_usd)})


async def main() -> None:
    app = web.Application()
    app.router.add_post("/chat", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    async with ClientSession() as client:
        for payload in ({"messages": [{"role": "user", "content": "Hi!"}]}, {"messages": "not a list"}):
            async with client.post(f"http://127.0.0.1:{port}/chat", json=payload, headers={"X-Tenant": "acme"}) as r:
                print(r.status, await r.json())
    await runner.cleanup()


asyncio.run(main())
