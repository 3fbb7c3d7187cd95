"""Evaluate and calibrate the router on a labelled prompt set, and draw the cost-quality picture.

Uses ../shared/data/routerbench-train.jsonl when it is there; else a small set this example writes
(so it always runs offline). Writes curve.png and tierwise.yaml into a temporary folder.
"""

import json
import random
import tempfile
from pathlib import Path

from classifiers import default_classifier, load_rows
from policies import calibrate
from router.evaluate import evaluate, matrices

TIERS = ["mistralai/mistral-7b-chat", "gpt-3.5-turbo-1106", "gpt-4-1106-preview"]
out = Path(tempfile.mkdtemp())
data = Path(__file__).resolve().parents[2] / "shared" / "data" / "routerbench-train.jsonl"
if not data.exists():  # a stand-in: long, maths-heavy prompts defeat the small models
    rng, data = random.Random(0), out / "set.jsonl"
    with data.open("w") as fh:
        for i in range(400):
            hard = rng.random() < 0.4
            text = ("Prove that the integral of x^2 from 0 to 1 is 1/3, step by step. " * 3) if hard else f"Say hi to friend {i}."
            q = [0.0 if hard else 1.0, 0.0 if hard and rng.random() < 0.5 else 1.0, 1.0]
            fh.write(json.dumps({"id": str(i), "messages": [{"role": "user", "content": text}], "outcomes": {
                t: {"quality": q[k], "cost_usd": 0.0001 * 10**k} for k, t in enumerate(TIERS)}}) + "\n")

rows = [r for r in load_rows(data) if all(t in r.outcomes for t in TIERS)]
random.Random(1).shuffle(rows)
dev, test = rows[: len(rows) // 2], rows[len(rows) // 2 :]
clf = default_classifier()
quality, cost, _, _ = matrices(dev, TIERS, {})
cal = calibrate(clf.score_batch([r.messages for r in dev]), quality, cost, "quality", 0.95)
print(f"calibrated on {len(dev)} rows for 95% of top-tier quality: thresholds {[round(t, 3) for t in cal.thresholds]}")
(out / "tierwise.yaml").write_text(f"thresholds: {[round(t, 6) for t in cal.thresholds]}\n")

report = evaluate(test, TIERS, clf, thresholds=cal.thresholds, bootstrap=50)
print(report.text().split("\n\ntask")[0])
print("wrote", report.plot(out / "curve.png"), "and", out / "tierwise.yaml")
