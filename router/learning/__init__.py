"""Learning the traffic a deployment serves: labels (shadow calls graded by a judge, failed checks,
feedback), refits warm-started from the shipped prior, and a stream simulator that measures it.

    from router.learning import simulate, refit
"""

from router.learning._loop import Learner
from router.learning._refit import Refit, refit
from router.learning._simulate import Simulation, simulate

__all__ = ["Learner", "Refit", "Simulation", "refit", "simulate"]
