"""The tuner: Bayesian optimisation with BoTorch, one rule per module.

Layers, top to bottom (each imports only those below it):

- :mod:`~boresnet.tuner.optimizer`: ``BayesianOptimizer``, the ask/tell glue;
- :mod:`~boresnet.tuner.lengths`: with a fidelity, how long each evaluation runs;
- :mod:`~boresnet.tuner.rules`: which kind of step comes next (design, exploration,
  gap step, the last evaluation);
- :mod:`~boresnet.tuner.acquisition`: constrained log-EI, its optimistic variant, and
  its maximisation;
- :mod:`~boresnet.tuner.exclusions`: where no proposal may go;
- :mod:`~boresnet.tuner.incumbent`: what is reported, and whether it sits at a bound;
- :mod:`~boresnet.tuner.surrogate`: the objective and feasibility GPs;
- :mod:`~boresnet.tuner.sampling`: seeds and Sobol points;
- :mod:`~boresnet.tuner.observations`: what was told, and the models' data;
- :mod:`~boresnet.tuner.fidelity`: the lengths an evaluation may run for, and their cost;
- :mod:`~boresnet.tuner.space`: the parameters (:class:`ParamSpec`) and their coordinates;
- :mod:`~boresnet.tuner.defaults`: every tuned default, each with its measured reason.

The tuner imports nothing else from ``boresnet``: it sees points, values and statuses.
``from boresnet.tuner import BayesianOptimizer, ParamSpec, SearchSpace`` is its public
path (the study's adapter, the benchmarks and the tests use it); docs/optimizer.md
explains every rule.
"""

from boresnet.tuner.defaults import TunerSettings, design_size
from boresnet.tuner.exclusions import SearchExhausted
from boresnet.tuner.fidelity import Fidelity
from boresnet.tuner.observations import DTYPE, STATUSES, Observation, Pending
from boresnet.tuner.optimizer import BayesianOptimizer
from boresnet.tuner.rules import is_final_step
from boresnet.tuner.space import ParamSpec, SearchSpace
from boresnet.tuner.surrogate import check_fidelity_kernel

__all__ = [
    "DTYPE", "STATUSES", "BayesianOptimizer", "Fidelity", "Observation", "ParamSpec", "Pending",
    "SearchExhausted", "SearchSpace", "TunerSettings", "check_fidelity_kernel", "design_size",
    "is_final_step",
]  # fmt: skip
