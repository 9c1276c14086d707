"""boresnet: Bayesian optimisation of a ResNet-9's SGD learning rate on KMNIST.

Imports run one way, from the command line down to the data:

1. :mod:`boresnet.cli` (parsing, one-line errors);
2. :mod:`boresnet.commands` (``train``, ``bo``, ``evaluate``, ``plot``);
3. :mod:`boresnet.study`, :mod:`boresnet.report`, :mod:`boresnet.resume`;
4. :mod:`boresnet.trial`, :mod:`boresnet.figures`;
5. :mod:`boresnet.tuner` (the Bayesian optimiser, a package of one rule per module);
6. :mod:`boresnet.config`, :mod:`boresnet.space`, :mod:`boresnet.journal`,
   :mod:`boresnet.run_folder`, :mod:`boresnet.data`, :mod:`boresnet.device_loader`,
   :mod:`boresnet.model`, :mod:`boresnet.module`.
"""

import warnings

# Raised while Lightning and torchmetrics import (a deprecation inside torch, not ours):
# filtered before anything imports them so that errors stay one line.
warnings.filterwarnings("ignore", category=FutureWarning, message=".*torch.jit.script.*")

__version__ = "0.1.0"
