"""boresnet: Bayesian optimisation of a ResNet-9's SGD learning rate on KMNIST.

Subpackages, from the command line down: ``cli`` (parsing, commands), ``study`` (the
loop, runners, journal, run folder, report), ``plots`` (figures), ``training`` (data,
model, one trial), ``config`` (the typed schema) and ``tuner`` (the Bayesian optimiser,
which imports nothing else from the package). ``tests/test_architecture.py`` states
and checks the order.
"""

import warnings

# Raised while Lightning and torchmetrics import (a deprecation inside torch, not ours):
# filtered before anything imports them so that errors stay one line.
warnings.filterwarnings("ignore", category=FutureWarning, message=".*torch.jit.script.*")

__version__ = "0.1.0"
