"""Learning the traffic a deployment serves: labels (shadow calls graded by a judge, failed checks,
feedback), refits chosen by cross-validation among the model in force, the shipped prior, warm
starts and a model trained alone (`select`), the answer verifier refitted on the labels' answers
(`refit_verifier`, with `learning.verifier`; given how the router escalates, an `Escalation`, only
when its escalations pay), and a stream simulator that measures it.

    from router.learning import simulate, refit, refit_verifier
"""

from router.learning._loop import Learner
from router.learning._refit import Refit, refit
from router.learning._select import Selection, select
from router.learning._simulate import Simulation, simulate
from router.learning._verify import Escalation, VerifierRefit, refit_verifier

__all__ = ["Escalation", "Learner", "Refit", "Selection", "Simulation", "VerifierRefit", "refit", "refit_verifier", "select", "simulate"]
