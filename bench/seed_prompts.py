"""Writes bench/data/seed-prompts.jsonl: labelled seed prompts written by the tierwise team.

The benchmark sets teach length and subject but barely any of the word cues that carry across
traffic (proof, derive, implement, design vs. translate, format, list, thanks), and they have no
long trivial requests. These rows do: hand-written templates and fillers, combined with a fixed
seed, labelled by band (not by any model's answers): trivial (small and frontier both fine),
ordinary (the small tier usually fine), demanding (the small tier usually falls short).
The shipped prior trains on them; the sanity suite in tests/ is written apart and never trained on.

    python bench/seed_prompts.py
"""

from __future__ import annotations

import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parent / "data" / "seed-prompts.jsonl"
QUALITY = {"trivial": (1.0, 1.0), "ordinary": (0.75, 1.0), "demanding": (0.1, 1.0)}

NAMES = ["Ada", "Bruno", "Chen", "Dara", "Emil", "Fatima", "Goran", "Hana", "Ivo", "Jana", "Kofi", "Lena", "Mateo", "Nina", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tariq", "Uma", "Viktor", "Wen", "Xavi", "Yusuf", "Zoe"]
CITIES = ["Lisbon", "Oslo", "Nairobi", "Lima", "Hanoi", "Quito", "Perth", "Tbilisi", "Dakar", "Riga", "Montreal", "Osaka", "Cork", "Porto", "Accra"]
FRUIT = ["apple", "banana", "cherry", "mango", "kiwi", "plum", "grape", "lemon", "lime", "peach", "pear", "fig", "melon", "papaya", "guava"]
SENTENCES = [
    "The meeting moved to Thursday at ten.", "Please bring your badge to the front desk.", "Our office is closed on public holidays.",
    "The parcel left the warehouse this morning.", "Dinner is ready, come downstairs.", "The train to the airport runs every twenty minutes.",
    "I left my umbrella at the café.", "The library opens at nine on weekdays.", "We sold all the tickets for Saturday.",
    "The printer on the second floor is out of paper.", "Thank you for your order, it ships tomorrow.", "The store will be closed for inventory.",
]
LANGS = ["French", "Spanish", "German", "Italian", "Portuguese", "Dutch"]
CODE_LANGS = ["Python", "Rust", "Go", "TypeScript", "C++", "Java"]

TRIVIAL_SHORT = [
    "hi", "hello there", "thanks!", "thank you so much", "good morning", "ok, got it", "cool, thanks", "bye for now",
    "What is the capital of {country}?", "How do you spell '{word}'?", "What day comes after {day}?", "Convert {n} km to miles.",
    "What is {a} plus {b}?", "Say hello in {lang}.", "Is {fruit} a fruit?", "What time zone is {city} in?",
    "Give me a synonym for '{adj}'.", "Uppercase this: {word}", "Translate 'good night' to {lang}.", "What is the plural of '{word}'?",
]
TRIVIAL_LONG = [
    "Please sort these names alphabetically and return them one per line: {names}.",
    "Format the following items as a bulleted markdown list, keep the order: {fruits}.",
    "Translate this into {lang}, nothing else: {sentences}",
    "Fix the capitalisation and punctuation of this text, change nothing else: {lower}",
    "Turn these rows into a markdown table with columns name and city:\n{rows}",
    "Reformat these dates as YYYY-MM-DD, one per line: {dates}.",
    "Count how many times the word 'the' appears in this text: {sentences}",
    "Convert this list to a JSON array of strings: {names}.",
    "Remove the duplicates from this list and keep the first of each: {dupes}.",
    "Put these cities in alphabetical order separated by commas: {cities}.",
    "Rewrite these sentences in the past tense, one per line: {sentences}",
    "Make every word in this title start with a capital letter: {lower}",
    "Copy this text but replace every comma with a semicolon: {sentences}",
    "Summarise in one line what this note says: {sentences}",
]
ORDINARY = [
    "Write a short, friendly email telling the team that {event}.", "Explain what a {concept} is in two sentences.",
    "Give me three ideas for a birthday gift for someone who likes {hobby}.", "Write a {lang2} function that reverses a string.",
    "What are the pros and cons of living in {city}?", "Suggest a name for a café that sells {fruit} smoothies.",
    "How do I create a virtual environment in Python?", "Write a haiku about {city} in winter.",
    "What is the difference between a list and a tuple in Python?", "Recommend a weekend itinerary for {city}.",
    "Explain the rules of chess castling briefly.", "Draft a polite reminder that the invoice is due on {day}.",
]
DEMANDING = [
    "Prove that {theorem}.", "Prove rigorously that {theorem}, justifying every step.",
    "Derive {derivation} from first principles.", "Derive the closed form of {series} and prove it by induction.",
    "Implement {system} in {lang2}, with tests, and explain its complexity.",
    "Design {architecture}; compare the trade-offs of at least two designs and justify your choice.",
    "Analyse {analysis}: identify the failure modes and quantify the risks.",
    "Write a formal proof that {theorem}, then generalise the result.",
    "Find and fix the race condition in a lock-free {structure} in {lang2}, and prove the fix is linearizable.",
    "Optimise {system} in {lang2} for throughput; explain why each change helps, with measurements you would take.",
    "Compare {method_a} and {method_b} for {task}: derive their asymptotic error and say when each wins.",
    "Explain why {deep}, step by step, with a worked counterexample.",
    "Design a schema and the queries for {architecture}, and analyse how it behaves at 100x the load.",
    "Solve this and show all the work: {problem}",
]
FILL = {
    "country": ["Peru", "Kenya", "Norway", "Vietnam", "Chile", "Ghana", "Austria", "Nepal"],
    "word": ["necessary", "rhythm", "library", "cactus", "index", "mouse", "analysis"],
    "day": ["Monday", "Tuesday", "Friday", "Sunday"], "adj": ["happy", "quick", "large", "quiet", "bright"],
    "event": ["the office party moved to Friday", "the wifi will be down tonight", "we hired a new designer", "the deadline slipped a week"],
    "concept": ["hash table", "mortgage", "compiler", "vaccine", "index fund", "API"],
    "hobby": ["hiking", "baking", "chess", "gardening", "jazz", "cycling"],
    "theorem": ["there are infinitely many primes", "the square root of 2 is irrational", "every tree with n nodes has n-1 edges",
                "a continuous function on a closed interval attains its maximum", "the harmonic series diverges",
                "every finite group of prime order is cyclic", "a^p is congruent to a modulo p for prime p",
                "the sum of the first n odd numbers is n squared", "there is no largest even perfect square"],
    "derivation": ["the Black-Scholes equation", "the backpropagation update for a two-layer network", "Kepler's third law",
                   "the variance of the sample mean", "the Euler-Lagrange equation", "the gradient of the softmax cross-entropy loss"],
    "series": ["the sum of k squared", "the geometric series with ratio r", "the sum of k times 2^k"],
    "system": ["a rate limiter with a sliding window", "an LRU cache with O(1) operations", "a Raft leader election",
               "a B-tree with deletion", "a consistent-hashing ring", "a regular-expression engine with backtracking limits",
               "a concurrent work-stealing scheduler", "a write-ahead log with crash recovery"],
    "architecture": ["a globally distributed rate limiter", "a multi-region payment ledger", "a real-time collaborative editor",
                     "an event-sourced inventory system", "a search index over a billion documents", "a feature store for online ML"],
    "analysis": ["the consistency model of a leaderless key-value store", "a startup's unit economics under rising churn",
                 "the security of a password-reset flow", "the convergence of stochastic gradient descent with momentum",
                 "the effect of a 2% rate rise on a bond ladder"],
    "structure": ["queue", "stack", "hash map", "ring buffer"],
    "method_a": ["Simpson's rule", "Newton's method", "gradient boosting", "Monte Carlo sampling"],
    "method_b": ["Gaussian quadrature", "bisection", "random forests", "quasi-Monte Carlo"],
    "task": ["integrating a smooth function", "finding a root", "tabular regression", "estimating an expectation"],
    "deep": ["the halting problem is undecidable", "quicksort's worst case is quadratic and how randomisation helps",
             "two-phase commit blocks when the coordinator fails", "the central limit theorem needs finite variance",
             "floating-point addition is not associative"],
    "problem": [("a train leaves at 3pm at 80 km/h, another at 4pm at 100 km/h on the same track; when and where does the second catch up, "
                "and how does the answer change if the first stops for 20 minutes?"),
                "find all integer solutions of x^2 - 5y^2 = 1 with 0 < x < 1000 and prove there are no others",
                "how many ways can 10 identical balls go into 4 distinct boxes with no box holding more than 4?"],
}


def fill(template: str, rng: random.Random) -> str:
    sample = lambda pool, k: ", ".join(rng.sample(pool, k))
    extra = {
        "names": sample(NAMES, rng.randint(12, 26)), "fruits": sample(FRUIT, rng.randint(8, 14)), "cities": sample(CITIES, rng.randint(8, 14)),
        "sentences": " ".join(rng.sample(SENTENCES, rng.randint(4, 9))), "lower": " ".join(rng.sample(SENTENCES, rng.randint(3, 7))).lower(),
        "rows": "\n".join(f"{n}, {c}" for n, c in zip(rng.sample(NAMES, 10), rng.choices(CITIES, k=10))),
        "dates": ", ".join(f"{rng.randint(1, 28)}/{rng.randint(1, 12)}/{rng.randint(1990, 2025)}" for _ in range(rng.randint(8, 16))),
        "dupes": ", ".join(rng.choices(FRUIT[:6], k=rng.randint(12, 24))), "lang": rng.choice(LANGS), "lang2": rng.choice(CODE_LANGS),
        "city": rng.choice(CITIES), "fruit": rng.choice(FRUIT), "n": rng.randint(2, 500), "a": rng.randint(2, 99), "b": rng.randint(2, 99),
    }
    values = {k: rng.choice(v) for k, v in FILL.items()} | extra
    return template.format(**values)


def main() -> None:
    rng = random.Random(20261123)
    plan = [("trivial", TRIVIAL_SHORT, 160), ("trivial", TRIVIAL_LONG, 240), ("ordinary", ORDINARY, 160), ("demanding", DEMANDING, 400)]
    seen: set[str] = set()
    OUT.parent.mkdir(exist_ok=True)
    with OUT.open("w", encoding="utf-8") as fh:
        for band, templates, count in plan:
            made = 0
            for attempt in range(count * 20):
                text = fill(templates[attempt % len(templates)], rng)
                if text in seen:
                    continue
                seen.add(text)
                small, frontier = QUALITY[band]
                row = {"id": f"seed-{len(seen):04d}", "source": "tierwise-seed", "task": band,
                       "messages": [{"role": "user", "content": text}],
                       "outcomes": {"small": {"quality": small}, "frontier": {"quality": frontier}}}
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                made += 1
                if made == count:
                    break
    print(f"wrote {len(seen)} rows to {OUT}")


if __name__ == "__main__":
    main()
