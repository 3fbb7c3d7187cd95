"""Learned answer verifiers: a small linear model that scores a (prompt, answer) pair in [0, 1],
trained on recorded answers with `tierwise train-verifier` and used as an escalation check
(`escalation: {verifier: FILE}` or `router.checks.verifier(FILE)`). numpy at run time, JSON weights.

    from router.verifier import load_verifier
    v = load_verifier("verifier.json")
    v.score([{"role": "user", "content": "2+2?"}], "4")
"""

from router.verifier._features import DENSE as FEATURES
from router.verifier._model import Verifier, load_verifier
from router.verifier._train import answer_scores, examples, train_verifier

__all__ = ["FEATURES", "Verifier", "answer_scores", "examples", "load_verifier", "train_verifier"]
