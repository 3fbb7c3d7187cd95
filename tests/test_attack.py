"""The attack findings of the request path: what a caller sends is allow-listed and typed, a body
field can never redirect the provider key, and slow or hostile input gets a clear error."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from typing import Any

import httpx
import litellm
import openai
import pytest
from conftest import SECRET, KeywordClassifier, local_tiers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_gateway import KEY, OTHER, gateway_config, serving

from router import InvalidMessagesError, InvalidRequestError, Router, RouterConfig, TierwiseError
from router.serve import create_app
from router.testing import LocalOpenAIServer, ScriptedClient

MSG = [{"role": "user", "content": "hello there"}]
REDIRECTS = [{"api_base": "{evil}"}, {"base_url": "{evil}"}, {"extra_headers": {"x": "y"}}, {"api_key": "sk-mine"},
             {"custom_llm_provider": "openai"}, {"input_cost_per_token": 0}, {"metadata": {"a": 1}}, {"extra_body": {"a": 1}}]


@pytest.mark.parametrize("field", REDIRECTS, ids=lambda f: next(iter(f)))
def test_a_body_field_never_sends_the_provider_key_elsewhere(server: LocalOpenAIServer, ledger_url: str, field: dict[str, Any]) -> None:
    with LocalOpenAIServer() as evil:
        body = {k: (v.format(evil=evil.url) if isinstance(v, str) else v) for k, v in field.items()}
        with serving(RouterConfig.from_dict(gateway_config(server, ledger_url))) as url:
            client = openai.OpenAI(base_url=url, api_key=KEY, max_retries=0)
            with pytest.raises(openai.BadRequestError, match="cannot be set per request"):
                client.chat.completions.create(model="tierwise", messages=MSG, extra_body=body)  # type: ignore[arg-type]
        assert evil.requests == [] and server.requests == []
        with Router(RouterConfig.from_dict({"tiers": local_tiers(server.url), "ledger": ledger_url})) as router, \
                pytest.raises(InvalidRequestError, match="cannot be set per request"):
            router.complete(MSG, **body)
        assert evil.requests == [] and server.requests == []


def test_the_sdk_sends_what_it_allows_and_the_config_keeps_the_endpoint(server: LocalOpenAIServer, ledger_url: str) -> None:
    with Router(RouterConfig.from_dict({"tiers": local_tiers(server.url), "ledger": ledger_url})) as router:
        router.complete(MSG, temperature=0.3, seed=7, stop=["x"], user="u1", stream_options={"include_usage": False}, stream=True).close()
        router.complete(MSG, tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}], n=1)
    first = server.requests[0]["body"]
    assert first["temperature"] == 0.3 and first["seed"] == 7 and first["stream_options"]["include_usage"] is True  # usage always billed
    assert len(server.requests) == 2


@pytest.mark.parametrize("body", [{"tenant": "globex"}, {"request_id": "r1"}, {"temperature": "hot"}, {"n": 0}, {"n": 10**6},
                                  {"stream": "yes"}, {"model": ["tierwise"]}, {"max_tokens": -1}, {"mock_response": "free"},
                                  {"messages": [{"role": ["user"], "content": "x"}]}, {"messages": [{"role": {}, "content": "x"}]},
                                  {"messages": [{"role": "user", "content": [{"type": "text", "text": None}]}]},
                                  {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
                                  {"messages": [{"role": "user", "content": "x", "name": 5}]}])
def test_bad_bodies_are_400_in_openai_shape(server: LocalOpenAIServer, ledger_url: str, body: dict[str, Any]) -> None:
    with serving(RouterConfig.from_dict(gateway_config(server, ledger_url))) as url:
        sent = {"model": "tierwise", "messages": MSG, **body}
        resp = httpx.post(f"{url}/chat/completions", json=sent, headers={"authorization": f"Bearer {KEY}"}, timeout=10)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["type"] == "invalid_request_error" and server.requests == []


def test_deep_json_and_a_lone_surrogate_are_400_not_500(server: LocalOpenAIServer, ledger_url: str) -> None:
    with serving(RouterConfig.from_dict(gateway_config(server, ledger_url))) as url:
        headers = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}
        deep = '{"model": "tierwise", "messages": ' + "[" * 100_000 + "]" * 100_000 + "}"
        assert httpx.post(f"{url}/chat/completions", content=deep, headers=headers, timeout=10).status_code == 400
        nested = {"model": "tierwise", "messages": MSG, "response_format": json.loads("{\"a\":" * 200 + "1" + "}" * 200)}
        assert httpx.post(f"{url}/chat/completions", json=nested, headers=headers, timeout=10).status_code == 400
        surrogate = '{"model": "tierwise", "messages": [{"role": "user", "content": "bad \\ud800 text"}]}'
        resp = httpx.post(f"{url}/chat/completions", content=surrogate, headers=headers, timeout=10)
        assert resp.status_code == 400 and "Unicode" in resp.json()["error"]["message"]
    assert server.requests == []


def test_slow_clients_are_cut_off(server: LocalOpenAIServer, ledger_url: str) -> None:
    from router.serve import timed_protocol

    config = RouterConfig.from_dict(gateway_config(server, ledger_url, gateway={
        "keys": gateway_config(server, ledger_url)["gateway"]["keys"], "read_timeout_s": 0.5}))
    with serving(config, http=timed_protocol(0.5)) as url:
        port = int(url.split(":")[2].split("/")[0])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as head:  # trickles its head, never ends it
            head.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
            started = time.monotonic()
            assert head.recv(100) == b"" and time.monotonic() - started < 4  # closed by the server
        with socket.create_connection(("127.0.0.1", port), timeout=5) as body:  # a head, then a body that never comes
            body.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
                         "Content-Length: 100\r\n\r\n{".encode())
            assert b" 408 " in body.recv(1000).split(b"\r\n", 1)[0] + b" "


def test_a_body_over_the_limit_is_413_and_never_buffered_whole(server: LocalOpenAIServer, ledger_url: str) -> None:
    keys = gateway_config(server, ledger_url)["gateway"]["keys"]
    config = RouterConfig.from_dict(gateway_config(server, ledger_url, gateway={"keys": keys, "max_body_mb": 0.01}))  # 10 KiB
    headers = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}

    def chunked() -> Any:  # no Content-Length: the limit is found while reading
        yield b'{"model": "tierwise", "messages": [{"role": "user", "content": "'
        yield from (b"a" * 1000 for _ in range(100))
        yield b'"}]}'

    with serving(config) as url:
        assert httpx.post(f"{url}/chat/completions", json={"model": "tierwise", "messages": MSG}, headers=headers).status_code == 200
        big = {"model": "tierwise", "messages": [{"role": "user", "content": "a" * 20_000}]}
        for resp in (httpx.post(f"{url}/chat/completions", json=big, headers=headers, timeout=10),
                     httpx.post(f"{url}/chat/completions", content=chunked(), headers=headers, timeout=10)):
            assert resp.status_code == 413, resp.text
            assert resp.json()["error"]["code"] == "request_too_large" and "gateway.max_body_mb" in resp.json()["error"]["message"]
    assert len(server.requests) == 1


def test_a_request_of_many_messages_never_stalls_the_gateway(server: LocalOpenAIServer, ledger_url: str) -> None:
    """The provider SDK walks every message in Python (~0.1 ms each): 8,000 of them took the worker's
    event loop for ~1.1 s of a ~2.7 s request, so every other tenant waited (now ~0.04 s)."""
    many = [{"role": "user" if i % 2 == 0 else "assistant", "content": "hi"} for i in range(8_001)]
    with serving(RouterConfig.from_dict(gateway_config(server, ledger_url))) as url, httpx.Client(timeout=60) as pings:
        for stream in (False, True):
            waits: list[float] = []
            done = threading.Event()

            def ping(done: threading.Event = done, waits: list[float] = waits) -> None:
                while not done.is_set():
                    t0 = time.monotonic()
                    pings.get(url.replace("/v1", "/healthz"))
                    waits.append(time.monotonic() - t0)
                    time.sleep(0.01)

            pinger = threading.Thread(target=ping)
            pinger.start()
            t0 = time.monotonic()
            client = openai.OpenAI(base_url=url, api_key=KEY, max_retries=0, timeout=60)
            if stream:
                text = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
                    model="tierwise/small", messages=many, stream=True) if c.choices)  # type: ignore[arg-type]
            else:
                text = client.chat.completions.create(model="tierwise/small", messages=many).choices[0].message.content or ""  # type: ignore[arg-type]
            took = time.monotonic() - t0
            done.set()
            pinger.join()
            assert text and len(waits) >= 3 and max(waits) < took / 5, (stream, took, max(waits))
    assert len(server.requests) == 2 and len(server.requests[0]["body"]["messages"]) == 8_001


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                     lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids, max_size=3), max_leaves=12)
_part = st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url", "input_audio", 3])},
                              optional={"text": _json, "image_url": _json})
_message = st.fixed_dictionaries({}, optional={
    "role": st.sampled_from(["user", "assistant", "system", "tool", "bad"]) | _json,
    "content": st.text(max_size=20) | st.lists(_part | _json, max_size=3) | _json,
    "name": _json, "tool_calls": _json, "tool_call_id": _json})
_params = st.dictionaries(st.sampled_from(["temperature", "top_p", "max_tokens", "n", "stop", "seed", "tools", "tool_choice",
                                           "response_format", "logprobs", "top_logprobs", "user", "logit_bias", "api_base", "x"]),
                          _json, max_size=3)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(messages=st.lists(_message, max_size=3) | _json, params=_params)
def test_fuzzed_messages_and_parameters_raise_only_typed_errors(fuzz_router: Router, messages: Any, params: dict[str, Any]) -> None:
    try:
        fuzz_router.complete(messages, tenant="fuzz", **params)
    except (TierwiseError, ValueError, litellm.exceptions.APIError, litellm.exceptions.OpenAIError) as exc:
        assert not isinstance(exc, (TypeError, AttributeError, KeyError, RecursionError)), repr(exc)
        if isinstance(exc, TierwiseError):
            assert isinstance(exc, (InvalidMessagesError, InvalidRequestError)) or "budget" not in str(exc)


@pytest.fixture(scope="module")
def fuzz_router(tmp_path_factory: pytest.TempPathFactory) -> Any:
    url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'l.db'}"
    config = RouterConfig.from_dict({"tiers": [{"name": "small", "models": ["gpt-5-nano"]}], "ledger": url,
                                     "tenants": {"fuzz": {"budget_usd": "100", "period": "total"}}})
    with Router(config, client=ScriptedClient(), classifier=KeywordClassifier()) as router:
        yield router


def test_the_key_never_reaches_a_body_error(server: LocalOpenAIServer, ledger_url: str) -> None:
    with serving(RouterConfig.from_dict(gateway_config(server, ledger_url))) as url:
        resp = httpx.post(f"{url}/chat/completions", json={"model": "tierwise", "messages": MSG, "api_base": "http://x"},
                          headers={"authorization": f"Bearer {KEY}"}, timeout=10)
    assert SECRET not in resp.text and hashlib.sha256(KEY.encode()).hexdigest() not in resp.text


def test_closed_doors_models_metrics_and_unknown_routes(server: LocalOpenAIServer, ledger_url: str) -> None:
    metrics_key = "tw-metrics-0123456789"
    keys = gateway_config(server, ledger_url)["gateway"]["keys"]
    config = RouterConfig.from_dict(gateway_config(server, ledger_url, gateway={
        "keys": keys, "metrics_keys": [hashlib.sha256(metrics_key.encode()).hexdigest()]}))
    app = create_app(config)
    from starlette.testclient import TestClient

    with TestClient(app, base_url="http://10.1.2.3") as remote:  # a client from outside this host (in-process, no network)
        assert remote.get("/v1/models").status_code == 401
        assert remote.get("/v1/models", headers={"authorization": f"Bearer {KEY}"}).json()["data"]
        assert remote.get("/metrics").status_code == 401  # tenant names and spend stay in
        assert remote.get("/metrics", headers={"authorization": f"Bearer {KEY}"}).status_code == 401  # a tenant key is not a metrics key
        assert remote.get("/metrics", headers={"authorization": f"Bearer {metrics_key}"}).status_code == 200
        for method, path, status in (("GET", "/v2/nothing", 404), ("DELETE", "/v1/chat/completions", 405)):
            resp = remote.request(method, path)
            assert resp.status_code == status and resp.json()["error"]["type"] == "invalid_request_error", resp.text
    with serving(config) as url:  # the loopback may scrape without a key
        assert httpx.get(url.replace("/v1", "/metrics"), timeout=10).status_code == 200


def test_serve_says_where_it_listens_and_no_secret(tmp_path: Any) -> None:
    from router.serve import startup_line

    config = RouterConfig.from_dict({"ledger": "postgresql://app:s3cret@db.internal/tw", "gateway": {"keys": {"acme": ["a" * 64]}}})
    line = startup_line(config, "127.0.0.1", 8400, 2)
    assert line == "tierwise serve: listening on http://127.0.0.1:8400/v1 (2 workers, PostgreSQL ledger, 1 tenant with keys)"
    assert "s3cret" not in line and "db.internal" not in line


def test_one_tenants_burst_of_slow_requests_waits_for_its_own_slots_not_others(server: LocalOpenAIServer, ledger_url: str) -> None:
    """litellm keeps 500 connections to a provider host: one tenant's 1,100 slow requests made another
    tenant's one request wait 13-34 s for them (bench/fairness.py). A tenant past
    gateway.tenant_in_flight now waits for its own requests to end (before its body is read), then
    gets a 429 that its client retries; other tenants go straight through."""
    lock, busy, most = threading.Lock(), [0], [0]

    def responder(model: str, messages: list[dict[str, Any]]) -> Any:
        if "slow" not in str(messages[-1]["content"]):
            return "ok"
        with lock:
            busy[0] += 1
            most[0] = max(most[0], busy[0])
        time.sleep(0.8)
        with lock:
            busy[0] -= 1
        return "slow ok"

    server.responder = responder
    keys = gateway_config(server, ledger_url)["gateway"]["keys"]
    config = RouterConfig.from_dict(gateway_config(server, ledger_url, gateway={"keys": keys, "tenant_in_flight": 3}))
    slow = {"model": "tierwise/small", "messages": [{"role": "user", "content": "slow please"}]}
    with serving(config) as url, httpx.Client(timeout=30) as http:
        def send(key: str, body: dict[str, Any], out: list[Any]) -> None:
            t0 = time.monotonic()
            resp = http.post(f"{url}/chat/completions", json=body, headers={"authorization": f"Bearer {key}"})
            out.append((resp.status_code, time.monotonic() - t0, time.monotonic()))

        burst: list[Any] = []
        threads = [threading.Thread(target=send, args=(KEY, slow, burst)) for _ in range(6)]  # three run, three wait
        for t in threads:
            t.start()
        time.sleep(0.3)
        other: list[Any] = []
        send(OTHER, {"model": "tierwise/small", "messages": MSG}, other)  # globex, while acme's six are in flight or waiting
        for t in threads:
            t.join()
    assert other[0][0] == 200 and other[0][2] < max(end for _, _, end in burst), other  # served while acme's waited
    assert [s for s, _, _ in burst] == [200] * 6 and most[0] == 3  # all served, never more than three at the provider
    assert max(took for _, took, _ in burst) > 1.5 * 0.8  # the last ones waited for earlier ones to end


def test_a_tenant_past_its_slots_gets_a_429_and_a_stream_holds_its_slot_until_it_ends(server: LocalOpenAIServer, ledger_url: str) -> None:
    server.responder = lambda model, messages: ({"content": " ".join(["word"] * 20), "chunk_delay": 0.1}
                                                if "long" in str(messages[-1]["content"]) else "ok")
    keys = gateway_config(server, ledger_url)["gateway"]["keys"]
    config = RouterConfig.from_dict(gateway_config(server, ledger_url, gateway={"keys": keys, "tenant_in_flight": 1, "tenant_wait_s": 0.2}))
    body = {"model": "tierwise/small", "messages": MSG}
    long = {"model": "tierwise/small", "messages": [{"role": "user", "content": "a long answer"}]}
    with serving(config) as url:
        client = openai.OpenAI(base_url=url, api_key=KEY, max_retries=0, timeout=30)
        stream = client.chat.completions.create(**long, stream=True)  # type: ignore[call-overload]
        with pytest.raises(openai.RateLimitError) as info:  # the open stream holds acme's one slot
            client.chat.completions.create(**body)
        assert "gateway.tenant_in_flight" in str(info.value) and info.value.response.headers["retry-after"] == "1"
        assert 'tierwise_requests_total{tenant="acme",tier="-",status="in_flight"} 1' in httpx.get(url.replace("/v1", "/metrics")).text
        assert openai.OpenAI(base_url=url, api_key=OTHER, max_retries=0).chat.completions.create(**body).choices[0].message.content
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)  # read to its end: the slot is back
        assert client.chat.completions.create(**body).choices[0].message.content
        half = client.chat.completions.create(**long, stream=True)  # type: ignore[call-overload]
        half.close()  # the client leaves mid-stream: the slot comes back too
        deadline = time.monotonic() + 5
        while True:
            try:
                client.chat.completions.create(**body)
                break
            except openai.RateLimitError:
                assert time.monotonic() < deadline, "a stream the client left kept its slot"
                time.sleep(0.05)


def test_a_tenant_cannot_queue_more_requests_than_it_runs(server: LocalOpenAIServer, ledger_url: str) -> None:
    """Waiting requests hold the worker's connections and file descriptors: past as many waiting as
    running, a request is refused at once instead of queued."""
    server.responder = lambda model, messages: {"content": "ok", "delay": 3} if "slow" in str(messages[-1]["content"]) else "ok"
    keys = gateway_config(server, ledger_url)["gateway"]["keys"]
    config = RouterConfig.from_dict(gateway_config(server, ledger_url, gateway={"keys": keys, "tenant_in_flight": 1, "tenant_wait_s": 10}))
    slow = {"model": "tierwise/small", "messages": [{"role": "user", "content": "slow"}]}
    with serving(config) as url, httpx.Client(timeout=30) as http:
        headers = {"authorization": f"Bearer {KEY}"}
        results: list[tuple[int, float, str]] = []

        def send() -> None:
            t0 = time.monotonic()
            resp = http.post(f"{url}/chat/completions", json=slow, headers=headers)
            results.append((resp.status_code, time.monotonic() - t0, resp.text))

        threads = [threading.Thread(target=send) for _ in range(3)]  # one runs, one waits for it, one is one too many
        for t in threads:
            t.start()
            time.sleep(0.3)
        for t in threads:
            t.join()
    refused = [r for r in results if r[0] == 429]
    assert len(refused) == 1 and refused[0][1] < 2.5 and "already wait" in refused[0][2], results  # at once, not after 10 s
    assert sorted(r[0] for r in results) == [200, 200, 429]  # the one that waited got its turn


def test_metrics_through_a_local_proxy_that_names_its_caller_need_a_key(server: LocalOpenAIServer, ledger_url: str) -> None:
    """/metrics (every tenant's name and spend) is open to the loopback: a reverse proxy on the host that
    sends X-Forwarded-For makes its callers remote again (the README's advice), so they need a metrics key."""
    with serving(RouterConfig.from_dict(gateway_config(server, ledger_url))) as url:
        metrics = url.replace("/v1", "/metrics")
        assert httpx.get(metrics).status_code == 200  # a scraper on this host
        assert httpx.get(metrics, headers={"x-forwarded-for": "203.0.113.9"}).status_code == 401
