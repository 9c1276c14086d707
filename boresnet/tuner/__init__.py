"""The tuner: Bayesian optimisation with BoTorch, one rule per module.

Layers, top to bottom (each imports only those below it):

- :mod:`~boresnet.tuner.optimizer`: ``BayesianOptimizer``, the ask/tell glue;
- :mod:`~boresnet.tuner.rules`: which kind of step comes next (design, exploration,
  gap step, the last evaluation);
- :mod:`~boresnet.tuner.acquisition`: constrained log-EI, its optimistic variant, and
  its maximisation;
- :mod:`~boresnet.tuner.exclusions`: where no proposal may go;
- :mod:`~boresnet.tuner.incumbent`: what is reported, and whether it sits at a bound;
- :mod:`~boresnet.tuner.surrogate`: the objective and feasibility GPs;
- :mod:`~boresnet.tuner.sampling`: seeds and Sobol points;
- :mod:`~boresnet.tuner.observations`: what was told, and the models' data.

``from boresnet.tuner import BayesianOptimizer`` is the one public path (the CLI, the
benchmarks and the tests use it); docs/optimizer.md explains every rule.
"""

from boresnet.tuner.exclusions import SearchExhausted
from boresnet.tuner.observations import DTYPE, Observation
from boresnet.tuner.optimizer import BayesianOptimizer, Pending
from boresnet.tuner.rules import is_final_step

__all__ = [
    "DTYPE", "BayesianOptimizer", "Observation", "Pending", "SearchExhausted", "is_final_step",
]  # fmt: skip
