"""Train a complexity classifier on labelled prompts, save it, load it and score with it.

The example writes its own labelled set (no data needed): questions about tax law defeat the
small model, greetings and unit conversions do not.
"""

import json
import random
import tempfile
from pathlib import Path

from classifiers import load, train

rng = random.Random(0)
hard = ["Under §{n} of the tax code, how is a {x} treated when the partnership dissolves mid-year?",
        "Compare the depreciation of a {x} under straight-line and declining-balance rules for year {n}."]
easy = ["Hi! How are you today, {x}?", "Convert {n} kilometres to miles.", "Say thanks to {x} for the {n} flowers."]
things = ["vehicle", "patent", "warehouse", "Maria", "the team", "software licence"]

folder = Path(tempfile.mkdtemp())
data = folder / "labelled.jsonl"
with data.open("w") as fh:
    for i in range(300):
        is_hard = i % 3 == 0
        text = rng.choice(hard if is_hard else easy).format(n=rng.randint(2, 99), x=rng.choice(things))
        outcomes = {"small-model": {"quality": 0.0 if is_hard else 1.0}, "big-model": {"quality": 1.0}}
        fh.write(json.dumps({"id": f"p{i}", "split": "dev" if i % 5 == 0 else "train",
                             "messages": [{"role": "user", "content": text}], "outcomes": outcomes}) + "\n")

clf = train([data], weak="small-model", strong="big-model", seed=0)
weights = clf.save(folder / "my-weights.json")
mine = load(weights)  # JSON only: loading runs no code
print(f"trained on {clf.meta['rows_fit']} rows, {len(clf.vocab)} features, saved to {weights.name}")
for text in ("How is a leased truck treated under §12 when the partnership dissolves?", "Convert 5 kilometres to miles."):
    print(f"{mine.score([{'role': 'user', 'content': text}]):.3f}  {text}")
print("use it: RouterConfig(classifier='path/to/my-weights.json')")
