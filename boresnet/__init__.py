"""boresnet: Bayesian optimisation of a ResNet-9's SGD learning rate on KMNIST.

Data flows config -> data + model -> trial -> optimiser -> figures/journal:
:mod:`boresnet.config`, :mod:`boresnet.data`, :mod:`boresnet.model`,
:mod:`boresnet.module`, :mod:`boresnet.trial`, :mod:`boresnet.space`,
:mod:`boresnet.optimizer`, :mod:`boresnet.figures`, :mod:`boresnet.journal`,
:mod:`boresnet.study`, :mod:`boresnet.report` and :mod:`boresnet.cli`.
"""

__version__ = "0.1.0"
