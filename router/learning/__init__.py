"""Learning the traffic a deployment serves: labels (shadow calls graded by a judge, failed checks,
feedback), refits chosen by cross-validation among the model in force, the shipped prior, warm
starts and a model trained alone (`select`), and a stream simulator that measures it.

    from router.learning import simulate, refit
"""

from router.learning._loop import Learner
from router.learning._refit import Refit, refit
from router.learning._select import Selection, select
from router.learning._simulate import Simulation, simulate

__all__ = ["Learner", "Refit", "Selection", "Simulation", "refit", "select", "simulate"]
