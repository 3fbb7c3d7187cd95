"""`tierwise ledger`: spend by tenant, day, tier and model, budgets, and the always-frontier comparison."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import MOCK_TIERS, KeywordClassifier

from router import Router, RouterConfig
from router.cli import main
from router.ledger import Entry, open_ledger
from router.testing import ScriptedClient

DAY = 86_400.0
T0 = 1_763_856_000.0  # 2025-11-23T00:00:00Z


def _config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "tierwise.yaml"
    path.write_text(yaml.safe_dump({"tiers": MOCK_TIERS, "ledger": url, "tenants": {"acme": {"budget_usd": "5", "period": "total"}}}))
    return path


def _book(url: str) -> None:
    ledger = open_ledger(url, RouterConfig().budget_for)
    rows = [("acme", "small", "gpt-5-nano", 1, "ok", T0 + 60), ("acme", "small", "gpt-5-nano", 1, "check_failed", T0 + DAY),
            ("acme", "flash", "gpt-5-mini", 2, "ok", T0 + DAY + 1), ("globex", "frontier", "gpt-5", 1, "ok", T0 + 2 * DAY)]
    for i, (tenant, tier, model, attempt, outcome, ts) in enumerate(rows):
        rid = f"r{i}" if attempt == 1 else f"r{i - 1}"
        ledger.settle(None, Entry(rid, attempt, tenant, tier, model, 1000, 100, Decimal("0.001") * (i + 1), 0.1, outcome, "", ts))
    ledger.close()


def test_ledger_report_by_tenant_day_tier_and_model(any_ledger_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _book(any_ledger_url)
    cfg = _config(tmp_path, any_ledger_url)
    assert main(["ledger", "--config", str(cfg), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    acme, globex = report["tenants"]
    assert (acme["tenant"], acme["budget_usd"], acme["period"]) == ("acme", "5", "total")
    assert acme["requests"] == 2 and acme["attempts"] == 3 and Decimal(acme["cost_usd"]) == Decimal("0.006")
    assert [d["day"] for d in acme["days"]] == ["2025-11-23", "2025-11-24"]
    assert [(m["tier"], m["model"], m["attempts"]) for m in acme["models"]] == [("flash", "gpt-5-mini", 1), ("small", "gpt-5-nano", 2)]
    # Always-frontier: the two answers that passed, 1000 in + 100 out each, at gpt-5's price.
    from router import LiteLLMClient, ModelSpec

    p = LiteLLMClient().prices(ModelSpec(model="gpt-5"))
    assert Decimal(acme["always_frontier_usd"]) == 2 * (1000 * p.input + 100 * p.output)
    assert globex["budget_usd"] is None and report["total"]["requests"] == 3
    assert Decimal(report["total"]["cost_usd"]) == Decimal("0.010")
    if any_ledger_url.startswith("postgresql://"):
        assert "postgresql://" in report["ledger"]

    assert main(["ledger", "--config", str(cfg), "--json", "--since", "2025-11-24", "--until", "2025-11-25", "--tenant", "acme"]) == 0
    narrow = json.loads(capsys.readouterr().out)
    assert [t["tenant"] for t in narrow["tenants"]] == ["acme"] and narrow["tenants"][0]["attempts"] == 2
    assert narrow["since"] == "2025-11-24T00:00:00+00:00"

    assert main(["ledger", "--config", str(cfg), "--csv", str(tmp_path / "all.csv")]) == 0
    text = capsys.readouterr().out
    assert "wrote 4 entries" in text and "acme by day" in text and "always-frontier" in text
    assert main(["ledger", "--config", str(cfg), "--since", "last tuesday"]) == 2


def test_ledger_report_masks_a_url_password() -> None:
    from router.cli import mask_url

    assert mask_url("postgresql://app:s3cret@db:5432/tw") == "postgresql://app:***@db:5432/tw"


def test_router_reports_through_the_same_ledger(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    with Router(RouterConfig.from_dict({"tiers": MOCK_TIERS, "ledger": url}), client=ScriptedClient(), classifier=KeywordClassifier()) as router:
        router.complete([{"role": "user", "content": "hi"}], tenant="acme")
    assert main(["ledger", "--url", url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tenants"][0]["requests"] == 1


def test_the_report_equals_a_group_by_over_the_raw_entries(any_ledger_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Sparse traffic (30 tenants, a few entries each over 30 days), a zone off UTC, windows that cut hours."""
    import random
    from collections import defaultdict
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    rng = random.Random(3)
    ledger = open_ledger(any_ledger_url, RouterConfig().budget_for)
    for i in range(600):
        tier, model = rng.choice([("small", "gpt-5-nano"), ("flash", "gpt-5-mini"), ("frontier", "gpt-5")])
        ledger.settle(None, Entry(f"r{i}", rng.choice([1, 1, 2]), f"t{i % 30}", tier, model, rng.randint(1, 900), rng.randint(1, 300),
                                  Decimal(rng.randint(1, 10**6)) / 10**9, 0.1, rng.choice(["ok", "ok", "check_failed"]), "",
                                  T0 + rng.uniform(0, 30 * DAY)))
    cfg = tmp_path / "tierwise.yaml"  # days off UTC (a zone off by part of an hour counts its hours whole)
    cfg.write_text(yaml.safe_dump({"tiers": MOCK_TIERS, "ledger": any_ledger_url, "timezone": "Europe/Berlin"}))
    tz = ZoneInfo("Europe/Berlin")
    entries = ledger.entries()
    for since, until in [(None, None), (T0 + 5 * DAY + 1234.5, T0 + 17 * DAY + 77.7), (T0 + 3 * DAY + 10, T0 + 3 * DAY + 900)]:
        window = [] if since is None or until is None else ["--since", datetime.fromtimestamp(since, UTC).isoformat(),
                                                            "--until", datetime.fromtimestamp(until, UTC).isoformat()]
        assert main(["ledger", "--config", str(cfg), "--json", *window]) == 0
        report = json.loads(capsys.readouterr().out)
        days: dict[tuple[str, str], list[Any]] = defaultdict(lambda: [0, 0, Decimal(0)])
        models: dict[tuple[str, str, str], list[Any]] = defaultdict(lambda: [0, 0, Decimal(0)])
        for e in entries:
            if (since is None or e.ts >= since) and (until is None or e.ts < until):
                for group in (days[(e.tenant, datetime.fromtimestamp(e.ts, tz).date().isoformat())], models[(e.tenant, e.tier, e.model)]):
                    group[0] += 1
                    group[1] += e.attempt == 1
                    group[2] += e.cost_usd
        got_days = {(t["tenant"], d["day"]): [d["attempts"], d["requests"], Decimal(d["cost_usd"])] for t in report["tenants"] for d in t["days"]}
        got_models = {(t["tenant"], m["tier"], m["model"]): [m["attempts"], m["requests"], Decimal(m["cost_usd"])]
                      for t in report["tenants"] for m in t["models"]}
        assert got_days == dict(days) and got_models == dict(models)
    ledger.close()


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "Asia/Kolkata"])
def test_spent_in_period_is_what_the_books_hold_from_the_period_start(zone: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Read from the report's own days when it covers all time in a zone whose days start on the hour;
    from the hourly totals otherwise (a window, a zone off by part of an hour): the same figure."""
    import random
    import time
    from zoneinfo import ZoneInfo

    from router.ledger import period_start

    url = f"sqlite:///{tmp_path / 'p.db'}"
    periods = {"d": "day", "w": "week", "m": "month", "t": "total"}
    tenants = {name: {"budget_usd": "100", "period": period} for name, period in periods.items()}
    config = RouterConfig.from_dict({"tiers": MOCK_TIERS, "ledger": url, "timezone": zone, "tenants": tenants})
    ledger = open_ledger(url, config.budget_for, tz=ZoneInfo(zone))
    rng, now = random.Random(5), time.time()
    for i in range(400):  # over the last 40 days, so every period's start cuts through them
        ledger.settle(None, Entry(f"r{i}", 1, list(periods)[i % 4], "small", "gpt-5-nano", 10, 10, Decimal(rng.randint(1, 999)) / 10**6,
                                  0.1, "ok", "", now - rng.uniform(0, 40 * DAY)))
    entries = ledger.entries()
    ledger.close()
    cfg = tmp_path / "tierwise.yaml"
    cfg.write_text(yaml.safe_dump({"tiers": MOCK_TIERS, "ledger": url, "timezone": zone, "tenants": tenants}))
    for window in ([], ["--since", "2000-01-01"]):
        assert main(["ledger", "--config", str(cfg), "--json", *window]) == 0
        report = {t["tenant"]: t for t in json.loads(capsys.readouterr().out)["tenants"]}
        for name, period in periods.items():
            start = period_start(period, time.time(), ZoneInfo(zone))
            first = -1 if start == float("-inf") else start // 3600  # the books count the hour it falls in whole
            want = sum((e.cost_usd for e in entries if e.tenant == name and e.ts // 3600 >= first), Decimal(0))
            assert Decimal(report[name]["spent_in_period_usd"]) == want, (name, window)


def test_savings_by_lever_match_a_hand_computed_book(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--savings: routing (answers at the top model's price, less every attempt at its own),
    the provider's cached-input discount, and what cache hits saved; per tenant and day."""
    url = f"sqlite:///{tmp_path / 'l.db'}"
    tiers = [{"name": "small", "models": [{"model": "openai/m-small", "input_cost_per_token": "0.0000001", "output_cost_per_token": "0.0000004",
                                           "cache_read_input_cost_per_token": "0.00000001"}]},
             {"name": "frontier", "models": [{"model": "openai/m-big", "input_cost_per_token": "0.00001", "output_cost_per_token": "0.00004"}]}]
    cfg = tmp_path / "tierwise.yaml"
    cfg.write_text(yaml.safe_dump({"tiers": tiers, "ledger": url}))
    ledger = open_ledger(url, RouterConfig().budget_for)
    book = [Entry("r1", 1, "acme", "small", "openai/m-small", 1000, 100, Decimal("0.0001"), 0.1, "ok", "", T0 + 60, cached_in=400),
            # A custom check's reason that reads like a cache hit: billed tokens, so a failed attempt all the same.
            Entry("r2", 1, "acme", "small", "openai/m-small", 500, 50, Decimal("0.00007"), 0.1, "check_failed", "cache hit: saved $9",
                  T0 + DAY),
            Entry("r3", 1, "acme", "small", "openai/m-small", 0, 0, Decimal(0), 0.0, "ok", "cache hit: saved $0.0042", T0 + DAY),
            Entry("r4", 1, "acme", "small", "mystery-model-x", 10, 10, Decimal("0.001"), 0.1, "ok", "", T0 + DAY),
            # A session's turn: its cached input is the session's saving (its routing counts as any other's).
            Entry("r5", 1, "acme", "small", "openai/m-small", 300, 0, Decimal("0.00003"), 0.1, "ok", "", T0 + DAY, cached_in=200, in_session=1)]
    for entry in book:
        ledger.settle(None, entry)
    ledger.close()
    assert main(["ledger", "--config", str(cfg), "--json", "--savings"]) == 0
    found = json.loads(capsys.readouterr().out)["savings"]
    (acme,) = found["tenants"]
    routing = (1000 * Decimal("0.00001") + 100 * Decimal("0.00004")) - (1000 * Decimal("0.0000001") + 100 * Decimal("0.0000004"))
    failed = 500 * Decimal("0.0000001") + 50 * Decimal("0.0000004")
    assert Decimal(acme["routing_usd"]) == routing - failed + 300 * (Decimal("0.00001") - Decimal("0.0000001"))
    assert Decimal(acme["cached_input_usd"]) == 400 * (Decimal("0.0000001") - Decimal("0.00000001"))
    assert Decimal(acme["cache_hits_usd"]) == Decimal("0.0042")
    session_routing = 300 * (Decimal("0.00001") - Decimal("0.0000001"))
    assert Decimal(acme["session_usd"]) == 200 * (Decimal("0.0000001") - Decimal("0.00000001"))
    assert Decimal(acme["saved_usd"]) == routing - failed + session_routing + Decimal("0.000036") + Decimal("0.000018") + Decimal("0.0042")
    assert [(d["day"], Decimal(d["routing_usd"]), Decimal(d["session_usd"])) for d in acme["days"]] == [
        ("2025-11-23", routing, 0), ("2025-11-24", session_routing - failed, Decimal("0.000018"))]
    assert found["unpriced_models"] == ["mystery-model-x"] and found["top_model"] == "openai/m-big"
    assert main(["ledger", "--config", str(cfg), "--savings"]) == 0
    text = capsys.readouterr().out
    assert "by lever" in text and "session $" in text and "left out (no known price): mystery-model-x" in text
