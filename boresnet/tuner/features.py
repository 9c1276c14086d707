"""What the GPs see of a point: its search coordinates, or SGD's own coordinates.

With ``features="sgd"`` and both ``lr`` (log scale) and ``momentum`` (linear, below 1)
searched, the GPs model the log *effective* learning rate lr / (1 - momentum) in place
of log lr. SGD with momentum m takes steps of about lr / (1 - m), so its loss is a
valley along that ratio: a diagonal in (log lr, momentum), which a kernel with one
length-scale per input can only follow with many points, and a straight line across
the effective rate. Measured on this project's own model (benchmarks/data/
lr_momentum_table.csv): the best lr falls from about 3 at momentum 0 to 0.3 at 0.97.

The user's space is untouched: the design, the distance rules and the acquisition's
search work in search coordinates, and only the models' inputs change (a BoTorch input
transform, applied to every point a model is given or asked about).
"""

from __future__ import annotations

import math

import torch
from botorch.models.transforms import ChainedInputTransform, Normalize
from botorch.models.transforms.input import InputTransform

from boresnet.space import SearchSpace

FEATURES = ("sgd", "raw")


class EffectiveRate(InputTransform):
    """Search coordinates to (..., log10 lr / (1 - momentum), ..., momentum, ...).

    Args:
        lr: Position of log10(lr) among the coordinates.
        momentum: Position of the momentum (a linear coordinate below 1).
    """

    def __init__(self, lr: int, momentum: int) -> None:
        super().__init__()
        self.lr = lr
        self.momentum = momentum
        self.transform_on_train = True
        self.transform_on_eval = True
        self.transform_on_fantasize = True

    def transform(self, X: torch.Tensor) -> torch.Tensor:
        """Replace log10(lr) by log10(lr) - log10(1 - momentum); ``X``: ``(..., d)``."""
        out = X.clone()
        out[..., self.lr] = X[..., self.lr] - torch.log10(1.0 - X[..., self.momentum])
        return out

    def bounds(self, bounds: torch.Tensor) -> torch.Tensor:
        """The ``(2, d)`` box the features of a ``(2, d)`` box of coordinates fill."""
        out = bounds.clone()
        low, high = bounds[:, self.momentum]
        out[0, self.lr] = bounds[0, self.lr] - math.log10(1.0 - float(low))
        out[1, self.lr] = bounds[1, self.lr] - math.log10(1.0 - float(high))
        return out


def effective_rate(space: SearchSpace) -> EffectiveRate | None:
    """The effective-rate transform of ``space``, or ``None`` where it does not apply.

    It applies when ``lr`` is searched on a log scale and ``momentum`` on a linear one
    that stays below 1 (at 1 the effective rate is infinite).
    """
    scales = {p.name: p for p in space.params}
    lr, momentum = scales.get("lr"), scales.get("momentum")
    if lr is None or momentum is None or lr.scale != "log" or momentum.scale != "linear":
        return None
    if momentum.low < 0.0 or momentum.high >= 1.0:
        return None
    return EffectiveRate(space.names.index("lr"), space.names.index("momentum"))


def input_transform(space: SearchSpace, features: str, dtype: torch.dtype) -> InputTransform:
    """The GPs' input transform: the features (``sgd``) scaled to the unit cube.

    Args:
        space: The search space.
        features: ``sgd`` (the effective learning rate where it applies) or ``raw``
            (the search coordinates).
        dtype: The models' dtype.
    """
    if features not in FEATURES:
        raise ValueError(f"features must be one of {FEATURES}, not {features!r}")
    bounds = space.bounds(dtype)
    sgd = effective_rate(space) if features == "sgd" else None
    if sgd is None:
        return Normalize(space.dim, bounds=bounds)
    return ChainedInputTransform(sgd=sgd, normalize=Normalize(space.dim, bounds=sgd.bounds(bounds)))
