"""`tierwise serve` on 127.0.0.1, driven by the real openai client (sync, async, streaming, tools,
errors) and by curl, in front of a local fake provider."""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest
import uvicorn
import yaml
from conftest import local_tiers

from router import RouterConfig
from router.serve import create_app
from router.testing import LocalOpenAIServer

KEY, OTHER = "tw-acme-0123456789", "tw-globex-9876543210"
MSG = [{"role": "user", "content": "hello there"}]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def gateway_config(server: LocalOpenAIServer, ledger: str, **extra: Any) -> dict[str, Any]:
    keys = {"acme": [hashlib.sha256(KEY.encode()).hexdigest()], "globex": [hashlib.sha256(OTHER.encode()).hexdigest()]}
    return {"tiers": local_tiers(server.url), "ledger": ledger, "thresholds": [0.4, 0.7], "gateway": {"keys": keys}, **extra}


@contextlib.contextmanager
def serving(config: RouterConfig, **uv_options: Any) -> Iterator[str]:
    """The gateway on a free port of 127.0.0.1, in a thread; yields its /v1 URL."""
    port = _port()
    uv = uvicorn.Server(uvicorn.Config(create_app(config), host="127.0.0.1", port=port, log_level="warning", **uv_options))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert uv.started
    yield f"http://127.0.0.1:{port}/v1"
    uv.should_exit = True
    thread.join(10)


@pytest.fixture
def gateway(server: LocalOpenAIServer, ledger_url: str) -> Iterator[tuple[str, LocalOpenAIServer]]:
    config = RouterConfig.from_dict(gateway_config(server, ledger_url, tenants={"globex": {"budget_usd": "0.000001", "period": "total"}}))
    with serving(config) as url:
        yield url, server


def test_the_gateway_buys_shadow_labels_after_the_answer(server: LocalOpenAIServer, ledger_url: str) -> None:
    import httpx

    from router.ledger import open_ledger

    server.responder = lambda _model, msgs: "8" if "[REQUEST]" in str(msgs[-1]["content"]) else "ok"
    learning = {"shadow_rate": 1.0, "judge": "frontier", "budget_usd": "1.00", "refit_every": 0}
    config = RouterConfig.from_dict(gateway_config(server, ledger_url, learning=learning))
    with serving(config) as url:
        client = openai.OpenAI(base_url=url, api_key=KEY, max_retries=0)
        assert client.chat.completions.create(model="tierwise", messages=MSG).choices[0].message.content == "ok"  # type: ignore[arg-type]
        ledger = open_ledger(ledger_url, config.budget_for)
        deadline = time.monotonic() + 15
        while ledger.label_count() < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        label = ledger.labels()[0]
        assert label.tenant == "acme" and label.source == "shadow" and set(label.quality.values()) == {0.8}
        metrics = httpx.get(url.replace("/v1", "/metrics")).text
        assert "tierwise_labels 1" in metrics and "tierwise_label_spend_usd 0\n" not in metrics
        assert "tierwise_unparsable_grades 0" in metrics and "tierwise_label_buying_stopped 0" in metrics
        ledger.close()


def test_the_openai_client_routes_through_the_gateway(gateway: tuple[str, LocalOpenAIServer]) -> None:
    url, server = gateway
    server.scripts["m-small"].append("four")
    client = openai.OpenAI(base_url=url, api_key=KEY, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(model="tierwise", messages=MSG)  # type: ignore[arg-type]
    resp = raw.parse()
    assert resp.choices[0].message.content == "four" and resp.model == "openai/m-small"
    assert raw.headers["x-tierwise-tier"] == "small" and float(raw.headers["x-tierwise-cost-usd"]) > 0
    assert raw.headers["x-tierwise-request-id"] and 0 <= float(raw.headers["x-tierwise-score"]) <= 1
    pinned = client.chat.completions.create(model="tierwise/frontier", messages=MSG)  # type: ignore[arg-type]
    assert pinned.model == "openai/m-big"
    direct = client.chat.completions.create(model="openai/m-flash", messages=MSG)  # type: ignore[arg-type]
    assert direct.model == "openai/m-flash"
    ids = {m.id for m in client.models.list()}
    assert {"tierwise", "tierwise/small", "tierwise/frontier", "openai/m-flash"} <= ids


def test_streaming_tools_and_async(gateway: tuple[str, LocalOpenAIServer]) -> None:
    import asyncio

    url, server = gateway
    server.scripts["m-small"].append("streamed three words")
    client = openai.OpenAI(base_url=url, api_key=KEY, max_retries=0)
    chunks = list(client.chat.completions.create(model="tierwise", messages=MSG, stream=True,  # type: ignore[arg-type]
                                                 stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "streamed three words"
    assert any(c.usage is not None and c.usage.total_tokens > 0 for c in chunks)  # the final usage chunk
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}]
    resp = client.chat.completions.create(model="tierwise", messages=MSG, tools=tools)  # type: ignore[arg-type]
    assert resp.choices[0].message.content == "ok" and server.requests[-1]["body"]["tools"][0]["function"]["name"] == "lookup"

    async def twice() -> list[str]:
        aclient = openai.AsyncOpenAI(base_url=url, api_key=KEY, max_retries=0)
        answers = await asyncio.gather(*(aclient.chat.completions.create(model="tierwise", messages=MSG) for _ in range(5)))  # type: ignore[arg-type]
        await aclient.close()
        return [a.choices[0].message.content or "" for a in answers]

    assert asyncio.run(twice()) == ["ok"] * 5


def test_errors_come_back_in_openai_shape(gateway: tuple[str, LocalOpenAIServer]) -> None:
    url, server = gateway
    with pytest.raises(openai.AuthenticationError) as bad_key:
        openai.OpenAI(base_url=url, api_key="tw-wrong", max_retries=0).chat.completions.create(model="tierwise", messages=MSG)  # type: ignore[arg-type]
    assert bad_key.value.status_code == 401 and bad_key.value.code == "invalid_api_key"
    client = openai.OpenAI(base_url=url, api_key=KEY, max_retries=0)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="tierwise", messages=[])
    with pytest.raises(openai.BadRequestError, match="not configured"):
        client.chat.completions.create(model="gpt-4o", messages=MSG)  # type: ignore[arg-type]
    poor = openai.OpenAI(base_url=url, api_key=OTHER, max_retries=2)
    started = time.monotonic()
    with pytest.raises(openai.RateLimitError) as refused:
        poor.chat.completions.create(model="tierwise", messages=MSG, max_tokens=50)  # type: ignore[arg-type]
    assert time.monotonic() - started < 2  # x-should-retry: false, so the client does not retry a budget refusal
    body = refused.value.body
    assert isinstance(body, dict) and body["code"] == "budget_exceeded" and body["budget"]["cap_usd"] == "0.000001"
    server.scripts["m-small"].append({"status": 400, "body": json.dumps({"error": {"message": "no such parameter"}})})
    with pytest.raises(openai.APIStatusError) as provider:
        client.chat.completions.create(model="tierwise", messages=MSG)  # type: ignore[arg-type]
    assert provider.value.status_code == 502 and "Traceback" not in str(provider.value.body)


def test_request_id_headers_make_retries_free_and_metrics_count(gateway: tuple[str, LocalOpenAIServer]) -> None:
    url, server = gateway
    client = openai.OpenAI(base_url=url, api_key=KEY, max_retries=0)
    first = client.chat.completions.create(model="tierwise", messages=MSG, extra_headers={"Idempotency-Key": "order-7"})  # type: ignore[arg-type]
    again = client.chat.completions.create(model="tierwise", messages=MSG, extra_headers={"Idempotency-Key": "order-7"})  # type: ignore[arg-type]
    assert first.id == again.id and server.count("m-small") == 1
    import httpx

    metrics = httpx.get(url.replace("/v1", "/metrics")).text
    assert 'tierwise_requests_total{tenant="acme",tier="small",status="ok"} 2' in metrics
    assert "tierwise_request_seconds_count 2" in metrics and 'tierwise_spend_usd_total{tenant="acme"}' in metrics
    assert httpx.get(url.replace("/v1", "/healthz")).json() == {"status": "ok"}


@pytest.mark.skipif(shutil.which("curl") is None, reason="no curl")
def test_curl(gateway: tuple[str, LocalOpenAIServer]) -> None:
    url, _ = gateway
    body = json.dumps({"model": "tierwise", "messages": MSG})
    out = subprocess.run(["curl", "-s", "-i", f"{url}/chat/completions", "-H", f"Authorization: Bearer {KEY}", "-H",
                          "Content-Type: application/json", "-d", body], capture_output=True, text=True, timeout=30, check=True).stdout
    head, _, payload = out.replace("\r\n", "\n").partition("\n\n")
    assert head.startswith("HTTP/1.1 200") and "x-tierwise-tier: small" in head
    assert json.loads(payload)["choices"][0]["message"]["content"] == "ok"


def test_two_gateway_workers_hold_one_budget_on_postgres(server: LocalOpenAIServer, pg_url: str, tmp_path: Path) -> None:
    import asyncio

    # Answers as long as the max_tokens=20 they are held for, as real ones are at the limit.
    server.responder = lambda _model, _messages: "an answer of twenty tokens, as long as the max_tokens=20 that it was held for.."
    probe = RouterConfig.from_dict(gateway_config(server, f"sqlite:///{tmp_path / 'probe.db'}"))
    from router import Router

    with Router(probe) as router:  # what one request costs here, to set a cap that fits about 40
        cost = router.complete(MSG, max_tokens=20).route.cost_usd
    cfg = gateway_config(server, pg_url, tenants={"acme": {"budget_usd": str(cost * 40), "period": "total"}}, budget_wait_s=2)
    path = tmp_path / "tierwise.yaml"
    path.write_text(yaml.safe_dump(cfg))
    port = _port()
    proc = subprocess.Popen([sys.executable, "-m", "router.cli", "serve", "--config", str(path), "--port", str(port), "--workers", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        import httpx

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(url.replace("/v1", "/healthz"), timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)

        async def flood() -> int:
            client = openai.AsyncOpenAI(base_url=url, api_key=KEY, max_retries=0, timeout=60)

            async def one() -> bool:
                try:
                    await client.chat.completions.create(model="tierwise", messages=MSG, max_tokens=20)  # type: ignore[arg-type]
                    return True
                except openai.RateLimitError:
                    return False

            served = sum(await asyncio.gather(*(one() for _ in range(200))))
            await client.close()
            return served

        served = asyncio.run(flood())
    finally:
        proc.terminate()
        proc.wait(10)
    from router.ledger import open_ledger

    ledger = open_ledger(pg_url, RouterConfig.from_dict(cfg).budget_for)
    spent = ledger.spent("acme")
    ledger.close()
    assert spent <= cost * 40, "overspent"
    assert served >= 30, served


def test_sigterm_under_load_drains_and_loses_no_bill(server: LocalOpenAIServer, tmp_path: Path) -> None:
    import httpx

    from router.ledger import open_ledger

    server.scripts["m-small"].extend([{"content": "slow answer", "delay": 1.0}] * 12)
    ledger = f"sqlite:///{tmp_path / 'l.db'}"
    path = tmp_path / "tierwise.yaml"
    path.write_text(yaml.safe_dump(gateway_config(server, ledger)))
    port = _port()
    proc = subprocess.Popen([sys.executable, "-m", "router.cli", "serve", "--config", str(path), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/v1"
    assert proc.stderr is not None
    assert proc.stderr.readline().startswith(f"tierwise serve: listening on http://127.0.0.1:{port}/v1")  # said before it serves
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url.replace("/v1", "/healthz"), timeout=1).status_code == 200:
                break
        time.sleep(0.1)
    answered: list[str] = []

    def ask() -> None:
        resp = httpx.post(f"{url}/chat/completions", json={"model": "tierwise/small", "messages": MSG},
                          headers={"authorization": f"Bearer {KEY}"}, timeout=30)
        if resp.status_code == 200:
            answered.append(resp.headers["x-tierwise-request-id"])

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while server.count("m-small") < 8 and time.monotonic() < deadline:
        time.sleep(0.02)  # until all eight are in flight at the provider, however slow the machine
    proc.terminate()  # SIGTERM: stop taking requests, finish these, commit their bills, then exit
    for t in threads:
        t.join(30)
    assert proc.wait(30) in (0, -15)  # uvicorn re-raises the signal once it has shut down cleanly
    billed = {e.request_id for e in open_ledger(ledger, RouterConfig().budget_for).entries("acme")}
    assert len(answered) == 8 and set(answered) <= billed


def test_the_gateways_own_process_leaves_its_start_up_objects_out_of_full_gc_passes(ledger_url: str) -> None:
    """`tierwise serve` (app_from_env) freezes what start-up loaded (a full pass over litellm's
    objects stalls every request ~125 ms); an app embedded in someone else's process does not."""
    import gc

    from starlette.testclient import TestClient

    config = RouterConfig.from_dict({"tiers": local_tiers("http://127.0.0.1:9/v1"), "ledger": ledger_url})
    gc.unfreeze()
    try:
        with TestClient(create_app(config)):
            assert gc.get_freeze_count() == 0
        with TestClient(create_app(config, freeze_gc=True)):
            assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()


def test_metrics_split_what_each_answer_saved_by_lever(server: LocalOpenAIServer, ledger_url: str) -> None:
    import httpx

    tiers = local_tiers(server.url)
    tiers[0]["models"][0]["cache_read_input_cost_per_token"] = "0.00000001"  # small: input 1e-7, cached 1e-8, output 4e-7
    config = RouterConfig.from_dict({**gateway_config(server, ledger_url), "tiers": tiers})
    usage = {"content": "hi", "prompt_tokens": 1000, "completion_tokens": 10, "cached_tokens": 800}
    server.scripts["m-small"].extend([usage, usage])
    with serving(config) as url:
        client = openai.OpenAI(base_url=url, api_key=KEY, max_retries=0)
        for headers in ({"Idempotency-Key": "k1"}, {"Idempotency-Key": "k1"}, {"x-session-id": "s1"}):  # the replay saves nothing
            assert client.chat.completions.create(model="tierwise", messages=MSG, extra_headers=headers).model == "openai/m-small"  # type: ignore[arg-type]
        lines = httpx.get(url.replace("/v1", "/metrics")).text.splitlines()
    saved = {line.split('lever="')[1].split('"')[0]: Decimal(line.split()[-1]) for line in lines
             if line.startswith('tierwise_saved_usd{tenant="acme"')}
    # Against always-m-big (1e-5 in, 4e-5 out): each answer's tokens at its price, less small's uncached price.
    one = 1000 * Decimal("0.00001") + 10 * Decimal("0.00004") - 1000 * Decimal("0.0000001") - 10 * Decimal("0.0000004")
    cached = 800 * (Decimal("0.0000001") - Decimal("0.00000001"))
    assert saved == {"routing": 2 * one, "cached_input": cached, "session": cached, "cache_hits": 0}
