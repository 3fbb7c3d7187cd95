"""Keys in the ledger's database: `tierwise keys add` on one side, two running gateways on the
other (one PostgreSQL ledger) that take the key within a second, refuse it within a second of
`revoke`, hold its own rpm together, and never store or show the key itself."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx
import openai
from test_gateway import KEY, MSG, gateway_config, serving
from test_rate_limits import _same_minute

from router import RouterConfig
from router.cli import main as tierwise
from router.testing import LocalOpenAIServer


def keys(*args: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert tierwise(["keys", *args]) == 0
    return out.getvalue()


def _added(text: str) -> tuple[str, str]:
    found = re.search(r"(key_[0-9a-f]+) for tenant \S+: (tw-\S+)", text)
    assert found is not None, text
    return found.group(1), found.group(2)


def _status(url: str, key: str) -> int:
    return httpx.post(f"{url}/chat/completions", json={"messages": MSG}, headers={"authorization": f"Bearer {key}"}, timeout=30).status_code


def _within(seconds: float, check: object) -> float:
    """How long until `check()` holds (it must within `seconds`)."""
    start = time.monotonic()
    while not check():  # type: ignore[operator]
        assert time.monotonic() - start < seconds, "not within the bound"
        time.sleep(0.05)
    return time.monotonic() - start


def test_a_key_added_works_on_a_running_instance_and_a_revoked_one_stops_within_a_second(server: LocalOpenAIServer, pg_url: str) -> None:
    config = RouterConfig.from_dict(gateway_config(server, pg_url))
    with serving(config) as one, serving(config) as two:
        assert _status(two, "tw-not-yet") == 401
        key_id, key = _added(keys("add", "initech", "--url", pg_url))
        _within(1.0, lambda: _status(two, key) == 200)  # no restart: the other instance reads the ledger
        client = openai.OpenAI(base_url=one, api_key=key)
        assert client.chat.completions.create(model="tierwise", messages=MSG).choices[0].message.content  # type: ignore[arg-type]
        listed = keys("list", "--url", pg_url)
        assert key_id in listed and "initech" in listed and key not in listed  # the key itself is never shown again
        assert "last used" in listed
        new_id, new_key = _added(keys("rotate", key_id, "--url", pg_url))
        _within(1.0, lambda: _status(one, key) == 401 and _status(two, key) == 401)
        assert _status(one, new_key) == 200 and new_id != key_id
        keys("revoke", new_id, "--url", pg_url)
        _within(1.0, lambda: _status(two, new_key) == 401)


def test_a_keys_own_rpm_holds_over_two_instances(server: LocalOpenAIServer, pg_url: str) -> None:
    config = RouterConfig.from_dict(gateway_config(server, pg_url))
    with serving(config) as one, serving(config) as two:
        _, key = _added(keys("add", "hooli", "--rpm", "10", "--url", pg_url))
        # Both instances know the key before the burst (a model list counts against no rpm): under
        # load the second one's refresh could otherwise land mid-burst and answer 401s.
        auth = {"authorization": f"Bearer {key}"}
        _within(10.0, lambda: all(httpx.get(f"{u}/models", headers=auth).status_code == 200 for u in (one, two)))
        _same_minute(8)
        first = int(time.time() // 60)
        with ThreadPoolExecutor(20) as pool:
            codes = list(pool.map(lambda k: _status((one, two)[k % 2], key), range(40)))
        minutes = int(time.time() // 60) - first + 1
        assert codes.count(200) == 10 if minutes == 1 else 10 <= codes.count(200) <= 10 * minutes, (codes, minutes)
        assert codes.count(200) + codes.count(429) == 40, codes
        limited = httpx.post(f"{one}/chat/completions", json={"messages": MSG}, headers={"authorization": f"Bearer {key}"})
        assert limited.status_code == 429 and 0 < float(limited.headers["retry-after"]) <= 60
        assert limited.json()["error"]["type"] and "key_" in limited.json()["error"]["message"]


def test_bad_key_commands_are_clear_errors(pg_url: str) -> None:
    assert tierwise(["keys", "revoke", "key_nope", "--url", pg_url]) == 2
    assert tierwise(["keys", "add", "bad\ntenant", "--url", pg_url]) == 2
    assert tierwise(["keys", "add", "acme", "--expires", "2001-01-01", "--url", pg_url]) == 2
    assert tierwise(["keys", "add", "acme", "--rpm", "0", "--url", pg_url]) == 2
    assert tierwise(["keys", "add", "tierwise-learning", "--url", pg_url]) == 2  # the labels' tenant: the learning budget, no rpm
    assert "bad" not in keys("list", "--url", pg_url)  # nothing was stored by the refused commands


def test_the_admin_api_manages_keys_behind_an_admin_key(server: LocalOpenAIServer, ledger_url: str) -> None:
    admin = "tw-admin-0123456789abcdef"
    cfg = gateway_config(server, ledger_url)
    cfg["gateway"]["admin_keys"] = [hashlib.sha256(admin.encode()).hexdigest()]
    with serving(RouterConfig.from_dict(cfg)) as url:
        base = url.removesuffix("/v1")
        as_admin = {"authorization": f"Bearer {admin}"}
        assert httpx.get(f"{base}/admin/keys").status_code == 401
        assert httpx.get(f"{base}/admin/keys", headers={"authorization": f"Bearer {KEY}"}).status_code == 401  # a tenant key
        made = httpx.post(f"{base}/admin/keys", headers=as_admin, json={"tenant": "initech", "rpm": 5})
        assert made.status_code == 201 and made.json()["key"].startswith("tw-")
        key, key_id = made.json()["key"], made.json()["id"]
        _within(1.0, lambda: _status(url, key) == 200)
        listed = httpx.get(f"{base}/admin/keys", headers=as_admin).json()["data"]
        assert [k["tenant"] for k in listed if k["id"] == key_id] == ["initech"] and key not in json.dumps(listed)
        rotated = httpx.post(f"{base}/admin/keys/{key_id}/rotate", headers=as_admin)
        assert rotated.status_code == 201 and rotated.json()["revoked"] == key_id
        _within(1.0, lambda: _status(url, key) == 401)
        assert httpx.delete(f"{base}/admin/keys/{rotated.json()['id']}", headers=as_admin).status_code == 200
        assert httpx.delete(f"{base}/admin/keys/key_nope", headers=as_admin).status_code == 404
        bad = httpx.post(f"{base}/admin/keys", headers=as_admin, json={"tenant": "x", "rpm": 0})
        assert bad.status_code == 400 and "rpm" in bad.json()["error"]["message"]
        assert httpx.post(f"{base}/admin/keys", headers=as_admin, json={"tenant": "x", "api_base": "http://evil"}).status_code == 400
        reserved = httpx.post(f"{base}/admin/keys", headers=as_admin, json={"tenant": "tierwise-learning"})
        assert reserved.status_code == 400 and "reserved" in reserved.json()["error"]["message"]
        # One an older version stored is no caller: its money is the learning budget's and no rpm holds it.
        from router.ledger import open_ledger

        ledger = open_ledger(ledger_url, RouterConfig().budget_for)
        key = "tw-legacy-0123456789abcdef"
        ledger.keys.add_key("key_legacy", "tierwise-learning", hashlib.sha256(key.encode()).hexdigest(), time.time(), None, None)
        ledger.close()
        time.sleep(0.6)  # past the gateway's re-read of the keys
        assert _status(url, key) == 401
    with serving(RouterConfig.from_dict(gateway_config(server, ledger_url))) as url:  # no admin keys: no admin API at all
        assert httpx.get(f"{url.removesuffix('/v1')}/admin/keys").status_code == 404


def test_the_gateway_describes_itself_at_openapi_json_and_docs(server: LocalOpenAIServer, ledger_url: str) -> None:
    cfg = gateway_config(server, ledger_url)
    cfg["gateway"]["admin_keys"] = [hashlib.sha256(b"tw-admin-0123456789abcdef").hexdigest()]
    with serving(RouterConfig.from_dict(cfg)) as url:
        base = url.removesuffix("/v1")
        spec = httpx.get(f"{base}/openapi.json").json()
        assert spec["openapi"].startswith("3.") and {"/v1/chat/completions", "/v1/models", "/admin/keys"} <= set(spec["paths"])
        assert "429" in spec["paths"]["/v1/chat/completions"]["post"]["responses"]
        page = httpx.get(f"{base}/docs")
        assert page.status_code == 200 and "/v1/chat/completions" in page.text and "<script" not in page.text
    with serving(RouterConfig.from_dict(gateway_config(server, ledger_url))) as url:
        assert "/admin/keys" not in httpx.get(f"{url.removesuffix('/v1')}/openapi.json").json()["paths"]  # no admin API, none described


def test_a_tenant_added_with_a_budget_is_capped_by_a_running_instance(server: LocalOpenAIServer, pg_url: str) -> None:
    config = RouterConfig.from_dict(gateway_config(server, pg_url))
    with serving(config) as url:
        _, key = _added(keys("add", "umbrella", "--budget-usd", "0.0000001", "--period", "day", "--url", pg_url))
        # The budget cannot hold a call: refused with the budget's state, once the instance has read it (within a second).
        _within(1.5, lambda: _status(url, key) == 429)
        refused = httpx.post(f"{url}/chat/completions", json={"messages": MSG}, headers={"authorization": f"Bearer {key}"})
        assert Decimal(refused.json()["error"]["budget"]["cap_usd"]) == Decimal("0.0000001")
    assert tierwise(["keys", "add", "umbrella", "--budget-usd", "lots", "--url", pg_url]) == 2
