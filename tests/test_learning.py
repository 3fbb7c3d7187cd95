"""The learning loop in the SDK: shadow labels after the answer, the learning budget, feedback, refits."""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import local_tiers

from classifiers import Outcome, Row, default_classifier
from router import InvalidRequestError, Router, RouterConfig
from router.learning import refit
from router.testing import LocalOpenAIServer, ScriptedClient

LEARNING = "tierwise-learning"


def _responder(model: str, messages: list[dict[str, Any]]) -> Any:
    text = str(messages[-1]["content"])
    if "[REQUEST]" in text:  # the judge grades: the small tier's answers are poor
        return "3" if "small answer" in text else "9"
    if model == "m-small":
        return "small answer"
    return {"content": f"{model} answer", "delay": 0.3}  # shadow tiers are slow: the caller must not wait for them


def _config(url: str, ledger: str, **learning: Any) -> RouterConfig:
    return RouterConfig.from_dict({
        "tiers": local_tiers(url), "ledger": ledger, "thresholds": [0.9, 0.95], "budget_wait_s": 0, "checks": [],
        "learning": {"shadow_rate": 1.0, "judge": "frontier", "budget_usd": "1.00", "refit_every": 0, **learning},
    })


def test_shadow_labels_arrive_after_the_answer_and_keep_no_prompt(tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    with LocalOpenAIServer(responder=_responder) as server:
        with Router(RouterConfig.from_dict({"tiers": local_tiers(server.url), "ledger": f"sqlite:///{tmp_path / 'w.db'}"})) as warm:
            warm.complete([{"role": "user", "content": "warm up litellm"}], tier="small")  # its first call loads modules
        router = Router(_config(server.url, f"sqlite:///{db}"))
        t0 = time.monotonic()
        resp = router.complete([{"role": "user", "content": "Say hello to Zyxqvortian colleagues"}], tenant="acme")
        assert time.monotonic() - t0 < 0.3 and resp.route.tier == "small"  # shadow calls take 0.3 s each: not waited for
        assert router.ledger.label_count() == 0
        router.learning.close()  # waits for the pending shadow label
        labels = router.ledger.labels()
    assert len(labels) == 1
    label = labels[0]
    assert label.source == "shadow" and label.tenant == "acme" and label.quality == {"small": 0.3, "flash": 0.9, "frontier": 0.9}
    assert set(label.cost_usd) == {"small", "flash", "frontier"} and label.messages is None
    assert label.features["sw"] == 1.0  # its sampling weight: at a shadow_rate of 1 every request is sampled alike
    spent = {e.tier for e in router.ledger.entries(LEARNING)}
    assert spent == {"flash", "frontier"}  # shadow and judge calls are billed to the learning budget, not to acme
    assert router.ledger.spent("acme") == resp.route.cost_usd
    router.close()
    assert b"Zyxqvort" not in db.read_bytes() and b"hello" not in db.read_bytes()  # no prompt text unless asked


def test_store_prompts_keeps_the_messages(tmp_path: Path) -> None:
    with LocalOpenAIServer(responder=_responder) as server, Router(_config(server.url, f"sqlite:///{tmp_path / 'l.db'}", store_prompts=True)) as router:
        router.complete([{"role": "user", "content": "Say hello to Zyxqvortian colleagues"}])
        router.learning.close()
        assert router.ledger.labels()[0].messages == [{"role": "user", "content": "Say hello to Zyxqvortian colleagues"}]


def test_the_learning_budget_holds_under_200_concurrent_requests(tmp_path: Path) -> None:
    cap = Decimal("0.05")
    with LocalOpenAIServer() as server:  # answers come from litellm's mock_response: "9", which the judge's grade reads too
        router = Router(_config(server.url, f"sqlite:///{tmp_path / 'l.db'}", budget_usd=str(cap)), client=ScriptedClient(default="9"))
        with ThreadPoolExecutor(32) as pool:
            answers = list(pool.map(lambda i: router.complete([{"role": "user", "content": f"question {i}"}], tenant="acme"), range(200)))
        router.learning.close()
        state = router.learning.state()
    assert len(answers) == 200 and all(a.route.tier == "small" for a in answers)
    spent = router.ledger.spent(LEARNING)
    assert 0 < spent <= cap  # labels were bought, never past their own cap
    assert state["labels"] >= 1 and state["skipped_for_budget"] >= 100
    assert router.ledger.spent("acme") == sum(a.route.cost_usd for a in answers)  # the caller's bill holds no label
    router.close()


def _labels(n: int, signal: bool, seed: int = 0, words: tuple[str, str] = ("zebra", "apple")) -> list[Row]:
    """Labels where 'zebra' requests defeat the cheap tier (signal) or where nothing predicts it (noise)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        hard = rng.random() < 0.5
        word = (words[0] if hard else words[1]) if signal else rng.choice(words)
        small = 0.0 if (hard if signal else rng.random() < 0.5) else 1.0
        rows.append(Row(id=str(i), messages=[{"role": "user", "content": f"tell me about the {word} number {i}"}],
                        outcomes={"small": Outcome(small, cost_usd=0.001), "flash": Outcome(1.0, cost_usd=0.01),
                                  "frontier": Outcome(1.0, cost_usd=0.1)}))
    return rows


def test_a_refit_that_helps_is_swapped_in_and_one_that_cannot_beat_the_model_in_force_is_refused_with_its_reason() -> None:
    prior = default_classifier()
    tiers = ["small", "flash", "frontier"]
    good = refit(_labels(240, signal=True), tiers, prior, prior, [0.2, 0.6])
    assert good.swapped and good.auc_new is not None and good.auc_old is not None and good.auc_new > good.auc_old
    assert set(good.candidates) == {"in force", "warm C=0.03", "warm C=0.1", "warm C=0.3", "warm C=1.0", "alone"}  # each with its CV AUC
    zebra = [{"role": "user", "content": "tell me about the zebra number 7"}]
    apple = [{"role": "user", "content": "tell me about the apple number 7"}]
    assert good.classifier.score(zebra) > good.classifier.score(apple) + 0.2
    assert good.thresholds != (0.2, 0.6)  # re-calibrated on the labels, with the model swapped in
    # Labels where nothing predicts the cheap tier's failures: no candidate beats the model in force.
    noise = refit(_labels(240, signal=False, seed=1), tiers, prior, prior, [0.2, 0.6])
    assert not noise.swapped and noise.classifier is prior and noise.thresholds == (0.2, 0.6)  # thresholds move only with a swap
    assert noise.why.startswith(("kept the model in force", "candidate")) and "CV" in noise.why
    few = refit(_labels(60, signal=True), tiers, prior, prior, [0.2, 0.6])
    assert not few.swapped and "a swap needs 100" in few.why


def test_feedback_becomes_labels_and_a_refit_swaps_the_model_in_whole(tmp_path: Path) -> None:
    with LocalOpenAIServer() as server:
        # The signal is in the words: they are kept with store_prompts, and only then.
        config = _config(server.url, f"sqlite:///{tmp_path / 'l.db'}", shadow_rate=0, judge=None, refit_every=120, store_prompts=True)
        router = Router(config, client=ScriptedClient())
        before = router._core.brain
        for row in _labels(120, signal=True):
            resp = router.complete(row.messages, tenant="acme")
            router.feedback(resp.route.request_id, 0.5, tenant="acme")  # a first grade, replaced by the second
            router.feedback(resp.route.request_id, row.outcomes["small"].quality, tenant="acme")
        router.learning.close()  # the refit runs on the loop's thread: wait for it
        state = router.learning.state()
        assert state["labels"] == 120 and state["refits"] and state["refits"][-1]["swapped"]
        assert state["refits"][-1]["why"].startswith("candidate ") and "swapped in" in state["refits"][-1]["why"]  # each refit says why
        clf, policy = router._core.brain_for("acme")
        assert (clf, policy) != before and clf is not before[0]
        # acme's labels refit acme's model alone: no other tenant's requests are routed by it.
        assert router._core.brain == before and router._core.brain_for("globex") == before
        assert state["tenants"] == {"acme": {"thresholds": list(policy.thresholds), "verifier": False}}  # type: ignore[attr-defined]
        published = router.ledger.models(tenants=True)
        assert [m.tenant for m in published] == ["acme"] and router.ledger.latest_model() is None  # published for other instances
        with pytest.raises(InvalidRequestError, match="no recent request"):
            router.feedback("never-seen", 0.0, tenant="acme")
        with pytest.raises(InvalidRequestError, match=r"in \[0, 1\]"):
            router.feedback(resp.route.request_id, 1.5, tenant="acme")
        router.ledger.close()


@pytest.mark.parametrize("shared", [False, True])
def test_a_second_instance_picks_up_the_published_model(pg_url: str, shared: bool) -> None:
    """Each tenant's own model (the default), or with learning.shared the deployment's one for all."""
    with LocalOpenAIServer() as server:
        a = Router(_config(server.url, pg_url, shadow_rate=0, judge=None, refit_every=120, store_prompts=True, shared=shared),
                   client=ScriptedClient())
        b = Router(_config(server.url, pg_url, shadow_rate=0, judge=None, refit_every=0, shared=shared), client=ScriptedClient())
        prior = b._core.brain
        tenant = "acme"
        for row in _labels(120, signal=True):
            resp = a.complete(row.messages, tenant=tenant)
            a.feedback(resp.route.request_id, row.outcomes["small"].quality, tenant=tenant)
        a.learning.close()
        assert a.learning.state()["refits"][-1]["swapped"]
        b.complete([{"role": "user", "content": "hi"}])  # b's first request looks for a published model
        b.learning.close()  # the pickup runs on b's loop thread
        zebra = [{"role": "user", "content": "tell me about the zebra number 7"}]
        mine, theirs = b._core.brain_for(tenant), a._core.brain_for(tenant)
        assert mine[0].score(zebra) == pytest.approx(theirs[0].score(zebra)) and mine[0].score(zebra) != prior[0].score(zebra)
        assert mine[1].thresholds == theirs[1].thresholds  # type: ignore[attr-defined]
        assert (b._core.brain_for("globex") == prior) is not shared  # another tenant: the prior, unless learning is shared
        a.ledger.close()
        b.ledger.close()


def test_learning_config_is_checked() -> None:
    with pytest.raises(Exception, match="judge"):
        RouterConfig.from_dict({"learning": {"shadow_rate": 0.1, "budget_usd": "1"}})
    with pytest.raises(Exception, match="neither a tier"):
        RouterConfig.from_dict({"learning": {"shadow_rate": 0.1, "budget_usd": "1", "judge": "nope"}})
    with pytest.raises(Exception, match="reserved"):
        RouterConfig.from_dict({"tenants": {LEARNING: {"budget_usd": "1"}}})


def _write_set(path: Path, rows: list[Row]) -> Path:
    import json

    with path.open("w") as fh:
        for r in rows:
            fh.write(json.dumps({"id": r.id, "messages": r.messages,
                                 "outcomes": {t: {"quality": o.quality, "cost_usd": o.cost_usd} for t, o in r.outcomes.items()}}) + "\n")
    return path


def test_simulate_shows_learning_pay_off_on_traffic_the_prior_never_saw(tmp_path: Path) -> None:
    import json

    from router.cli import main

    # Words the shipped prior never saw: only the labels can teach them.
    data = _write_set(tmp_path / "set.jsonl", _labels(600, signal=True, seed=3, words=("blorfish", "quimmery")))
    out = tmp_path / "sim.json"
    assert main(["simulate", "--data", str(data), "--tiers", "small=small,flash=flash,frontier=frontier", "--shadow-rate", "0.3",
                 "--refit-every", "60", "--windows", "5", "--json", str(out)]) == 0
    sim = json.loads(out.read_text())
    assert len(sim["windows"]) == 5 and any(r["swapped"] for r in sim["refits"])
    half = sim["last_half"]
    assert half["gap_closed"] > half["prior_gap_closed"] + 0.2 and half["ci95"]["learning - prior"][0] > 0
    assert sim["totals"]["label_cost_vs_top"] > 0  # labels are paid for, and counted
    assert sim["totals"]["verdict"].startswith(("learning saved", "learning lost", "learning reached"))  # said in one line
    png = tmp_path / "curve.png"
    assert main(["simulate", "--data", str(data), "--tiers", "small=small,flash=flash,frontier=frontier", "--labels", "150",
                 "--refit-every", "50", "--windows", "5", "--json", str(out), "--plot", str(png)]) == 0
    budgeted = json.loads(out.read_text())
    assert budgeted["windows"][-1]["labels"] == 150  # exactly the budget, spread over the stream
    assert 15 <= budgeted["windows"][0]["labels"] <= 45  # a fifth of the stream bought about a fifth of it
    assert png.stat().st_size > 10_000
    assert main(["simulate", "--data", str(data), "--tiers", "small=small,flash=flash,frontier=frontier", "--labels", "150",
                 "--refit-every", "50", "--windows", "5", "--json", str(out), "--downward"]) == 0
    down = json.loads(out.read_text())  # the cheapest tier graded against the answer served: cheaper labels, as many
    assert down["windows"][-1]["labels"] == 150 and down["totals"]["label_cost_vs_top"] < budgeted["totals"]["label_cost_vs_top"]


def test_labels_export_feeds_train_with_the_prior(tmp_path: Path) -> None:
    import json

    from router.cli import main

    url = f"sqlite:///{tmp_path / 'l.db'}"
    with LocalOpenAIServer() as server, Router(_config(server.url, url, shadow_rate=0, judge=None, refit_every=0), client=ScriptedClient()) as router:
        for i, row in enumerate(_labels(60, signal=True)):
            tenant = "acme" if i % 3 else "globex"
            resp = router.complete(row.messages, tenant=tenant)
            router.feedback(resp.route.request_id, row.outcomes["small"].quality, tenant=tenant)
    out = tmp_path / "mine.jsonl"
    assert main(["labels", "export", "--ledger", url, "--out", str(out), "--tenant", "globex"]) == 0
    assert {json.loads(line)["tenant"] for line in out.read_text().splitlines()} == {"globex"} and len(out.read_text().splitlines()) == 20
    assert main(["labels", "export", "--ledger", url, "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 60 and "zebra" not in out.read_text()  # features, not prompts
    weights = tmp_path / "w.json"
    assert main(["train", "--data", str(out), "--tiers", "small=small,flash=flash,frontier=frontier", "--prior", "default", "--out", str(weights)]) == 0
    assert weights.exists()


def test_two_processes_on_one_postgresql_ledger_refit_once_and_both_pick_it_up(pg_url: str) -> None:
    import json
    import os
    import subprocess
    import sys

    worker = Path(__file__).parent / "helpers" / "learning_worker.py"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    tenant = "acme"  # its labels refit its own model (the default): the tenant's refit slot decides who refits
    procs = [subprocess.Popen([sys.executable, str(worker), pg_url, str(first), "60", tenant], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for first in (0, 60)]
    for proc in procs:  # both have labelled their half: 120 labels in all, one refit due
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready", proc.communicate(timeout=60)
    states, errors = [], []
    for proc in procs:
        out, err = proc.communicate("go\n", timeout=60)
        states.append(json.loads(out.strip().splitlines()[-1]))
        errors.append(err[-2000:])  # what a worker logged: shown when an assertion below fails
    assert sum(s["refits"] for s in states) == 1, (states, errors)  # one instance refitted, not both
    from router.ledger import open_ledger

    ledger = open_ledger(pg_url, RouterConfig.from_dict({}).budget_for)
    published = [m for m in ledger.models(tenants=True) if m.tenant == tenant]
    ledger.close()
    assert len(published) == 1 and all(s["tenant_model_id"] >= published[0].id for s in states), (states, errors)  # both picked it up
    assert states[0]["thresholds"] == states[1]["thresholds"] == published[0].thresholds, (states, errors)


def test_one_tenants_traffic_buys_at_most_its_share_of_labels(tmp_path: Path) -> None:
    with LocalOpenAIServer(responder=_responder) as server:
        router = Router(_config(server.url, f"sqlite:///{tmp_path / 'l.db'}", labels=5, tenant_labels=2), client=ScriptedClient(default="8"))
        for i in range(6):  # a flood from one tenant, then another tenant's requests
            router.complete([{"role": "user", "content": f"q {i}"}], tenant="flood")
            router.learning.close()
        for i in range(3):
            router.complete([{"role": "user", "content": f"r {i}"}], tenant="quiet")
            router.learning.close()
        assert sorted(lab.tenant for lab in router.ledger.labels()) == ["flood", "flood", "quiet", "quiet"]
        assert router.learning.state()["skipped_for_labels"] == 5
        router.close()


def test_a_judge_that_answers_in_prose_stops_the_buying_and_says_why(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    prose = "The answer is quite good overall, though it could say more."  # no grade in it
    with LocalOpenAIServer(responder=lambda _m, msgs: prose if "[REQUEST]" in str(msgs[-1]["content"]) else "ok") as server:
        router = Router(_config(server.url, f"sqlite:///{tmp_path / 'l.db'}"), client=ScriptedClient())
        with caplog.at_level("WARNING", logger="tierwise"):
            for i in range(12):
                router.complete([{"role": "user", "content": f"question {i}"}], tenant="acme")
                router.learning.close()  # one shadow job at a time, as a slow stream would
        state = router.learning.state()
        assert state["labels"] == 0 and state["unparsable_grades"] == 5 and "without a grade" in (state["stopped"] or "")
        assert any("shadow labels stopped" in r.getMessage() for r in caplog.records)
        # Each of the 5 tries cost one judge call on the served answer; no other tier was bought for a label that could not come.
        assert {e.tier for e in router.ledger.entries(LEARNING)} == {"frontier"} and len(router.ledger.entries(LEARNING)) == 5
        router.close()


def test_a_label_budget_holds_across_two_instances_under_concurrency(tmp_path: Path) -> None:
    import threading

    with LocalOpenAIServer(responder=_responder) as server:
        config = _config(server.url, f"sqlite:///{tmp_path / 'l.db'}", labels=3)
        routers = [Router(config, client=ScriptedClient(default="8")) for _ in range(2)]  # "8": every answer and grade reads 8
        threads = [threading.Thread(target=routers[k % 2].complete, args=([{"role": "user", "content": f"q {k}"}],), kwargs={"tenant": "acme"})
                   for k in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for r in routers:
            r.learning.close()
        states = [r.learning.state() for r in routers]
        assert states[0]["labels"] == 3  # exactly the budget, whichever instance bought them
        assert sum(s["skipped_for_labels"] for s in states) == 37  # every other sampled request was told no, none paid for
        for r in routers:
            r.close()


def test_a_downward_label_buys_the_cheapest_answer_graded_against_the_one_served(tmp_path: Path) -> None:
    graded: list[str] = []

    def responder(model: str, messages: list[dict[str, Any]]) -> Any:
        text = str(messages[-1]["content"])
        if "[REFERENCE]" in text:  # the judge grades the small answer against the served one
            graded.append(text)
            return "4"
        return "small answer" if model == "m-small" else f"{model} answer"

    with LocalOpenAIServer(responder=responder) as server:
        router = Router(_config(server.url, f"sqlite:///{tmp_path / 'l.db'}", downward=True))
        resp = router.complete([{"role": "user", "content": "Explain it"}], tenant="acme", tier="flash")  # a stronger tier answered
        router.learning.close()
        (label,) = router.ledger.labels()
    assert label.source == "downward" and label.quality == {"small": 0.4, "frontier": 1.0}  # the served answer is the reference
    assert set(label.cost_usd) == {"small", "frontier"} and label.cost_usd["frontier"] == float(resp.route.cost_usd)
    assert len(graded) == 1 and "m-flash answer" in graded[0] and "small answer" in graded[0]  # one grade, with the reference
    assert {e.tier for e in router.ledger.entries(LEARNING)} == {"small", "frontier"}  # one cheap call and the judge: nothing else
    router.close()


def test_spread_buys_a_period_s_labels_no_faster_than_it_passes(tmp_path: Path) -> None:
    """`spread`: by a time of the day, at most that share of the day's labels (plus 1/24) and of its
    label dollars; without it, labels are bought as fast as they are sampled."""
    midnight = 1_796_428_800.0  # 2026-12-05 00:00 UTC

    def labels_after(router: Router, requests: int, offset: int) -> int:
        for i in range(requests):
            router.complete([{"role": "user", "content": f"question {offset + i}"}], tenant="acme")
            router.learning.close()  # one at a time: each label is bought before the next is sampled
        return router.ledger.label_count()

    with LocalOpenAIServer() as server:
        client = ScriptedClient(default="9")
        with Router(_config(server.url, f"sqlite:///{tmp_path / 'a.db'}", labels=48, spread=True), client=client) as router:
            router.learning.now = lambda: midnight + 60  # 48 x (1/1440 + 1/24) -> 3 labels so far
            assert labels_after(router, 6, 0) == 3 and router.learning.state()["skipped_for_labels"] == 3
            router.learning.now = lambda: midnight + 12 * 3600  # noon: 48 x (1/2 + 1/24) -> 26
            assert labels_after(router, 6, 6) == 9
        with Router(_config(server.url, f"sqlite:///{tmp_path / 'b.db'}", labels=48), client=client) as router:
            router.learning.now = lambda: midnight + 60
            assert labels_after(router, 6, 0) == 6  # not spread: the day's labels go as fast as they are sampled
        with Router(_config(server.url, f"sqlite:///{tmp_path / 'c.db'}", budget_usd="0.2", spread=True), client=client) as router:
            router.learning.now = lambda: midnight + 60  # $0.2 x 0.042 = $0.0085 so far; a label costs about $0.0037
            bought = labels_after(router, 6, 0)
            assert 0 < bought < 6 and router.learning.state()["skipped_for_pace"] == 6 - bought
            router.learning.now = lambda: midnight + 23 * 3600  # late in the day: the rest of the budget is open
            assert labels_after(router, 6, 6) == bought + 6
