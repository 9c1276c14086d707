"""Scalable residual networks: a ResNet-9 whose width and depth come from a config.

The classic ResNet-9 (Myrtle.ai / DAWNBench) is a prep convolution followed by three
stages of conv-BN-ReLU + max-pool, with a residual block after the first and third
stage, a global max pool and a linear head. :class:`ResNet` builds any such network
from a list of :class:`StageSpec`; :func:`resnet9` gives the classic shape.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn


def conv_bn(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """Return a 3x3 convolution followed by batch norm and ReLU.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        stride: Convolution stride.

    Returns:
        The conv-BN-ReLU block.
    """
    return nn.Sequential(
        # No conv bias: batch norm's shift makes it redundant.
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class ResidualBlock(nn.Module):
    """A residual block: ``relu(body(x) + shortcut(x))``.

    The shortcut is the identity when shape is preserved, otherwise a 1x1 projection
    (convolution with the block's stride, then batch norm), so one class covers both
    kinds of block.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        num_convs: Number of 3x3 conv-BN-ReLU layers the shortcut skips.
        stride: Stride of the first convolution (2 halves the resolution).
        projection: Force a projection shortcut even when shapes match.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_convs: int = 2,
        stride: int = 1,
        projection: bool = False,
    ) -> None:
        super().__init__()
        if num_convs < 1:
            raise ValueError(f"num_convs must be >= 1, got {num_convs}")
        layers = [conv_bn(in_channels, out_channels, stride)]
        layers += [conv_bn(out_channels, out_channels) for _ in range(num_convs - 1)]
        self.body = nn.Sequential(*layers)
        if projection or stride != 1 or in_channels != out_channels:
            self.shortcut: nn.Module = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        else:
            self.shortcut = nn.Identity()

    @property
    def has_projection(self) -> bool:
        """Whether the shortcut is a 1x1 projection rather than the identity."""
        return not isinstance(self.shortcut, nn.Identity)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block."""
        # Not in-place: the shortcut output may alias x for the identity.
        return torch.relu(self.body(x) + self.shortcut(x))


@dataclass(frozen=True)
class StageSpec:
    """One stage: a conv-BN-ReLU to ``channels``, optional pooling, residual blocks.

    Attributes:
        channels: Output channels of the stage.
        blocks: Residual blocks after the stage's convolution.
        pool: Whether to max-pool (2x2) after the convolution.
        convs_per_block: Convolutions each residual block skips.
    """

    channels: int
    blocks: int = 0
    pool: bool = True
    convs_per_block: int = 2


class ResNet(nn.Sequential):
    """A residual network composed of a prep convolution, stages and a head.

    Args:
        stages: Specification of each stage, in order.
        prep_channels: Channels of the prep convolution.
        in_channels: Image channels (1 for KMNIST).
        num_classes: Classes of the linear head.
        head_scale: Multiplier on the logits. 0.125, as in the original ResNet-9:
            in 2-epoch CPU runs (4,000 images, batch 128) lr 0.1 and 0.3 stalled at
            val_acc 0.15 and 0.14 with 1.0, and reached 0.77 and 0.92 with 0.125.
    """

    def __init__(
        self,
        stages: Sequence[StageSpec],
        prep_channels: int = 64,
        in_channels: int = 1,
        num_classes: int = 10,
        head_scale: float = 0.125,
    ) -> None:
        modules: dict[str, nn.Module] = {"prep": conv_bn(in_channels, prep_channels)}
        channels = prep_channels
        for i, spec in enumerate(stages, start=1):
            stage: list[nn.Module] = [conv_bn(channels, spec.channels)]
            if spec.pool:
                stage.append(nn.MaxPool2d(2))
            stage += [
                ResidualBlock(spec.channels, spec.channels, spec.convs_per_block)
                for _ in range(spec.blocks)
            ]
            modules[f"stage{i}"] = nn.Sequential(*stage)
            channels = spec.channels
        modules["pool"] = nn.AdaptiveMaxPool2d(1)
        modules["flatten"] = nn.Flatten()
        modules["head"] = nn.Linear(channels, num_classes)
        # Named children give readable state dicts and summaries.
        super().__init__(OrderedDict(modules))
        self.head_scale = head_scale
        self.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return class logits for a batch of images ``(N, C, H, W)``."""
        return super().forward(x) * self.head_scale

    def reset_parameters(self) -> None:
        """Reinitialise every layer: Kaiming-normal convolutions, unit batch norm."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                module.reset_parameters()
            elif isinstance(module, nn.Linear):
                module.reset_parameters()


def resnet9(
    width: int = 64,
    num_classes: int = 10,
    in_channels: int = 1,
    blocks: Sequence[int] = (1, 0, 1),
    convs_per_block: int = 2,
) -> ResNet:
    """Build the classic ResNet-9, every stage scaled by ``width``.

    ``width=64`` gives stages of 128/256/512 channels (about 6.5 M parameters);
    ``width=16`` is the CPU profile (about 0.4 M).

    Args:
        width: Channels of the prep convolution; stages use 2x, 4x and 8x.
        num_classes: Number of classes.
        in_channels: Image channels.
        blocks: Residual blocks after each of the three stages.
        convs_per_block: Convolutions each residual block skips.

    Returns:
        The network.
    """
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}")
    stages = [
        StageSpec(width * 2**i, blocks=b, pool=True, convs_per_block=convs_per_block)
        for i, b in enumerate(blocks, start=1)
    ]
    return ResNet(stages, prep_channels=width, in_channels=in_channels, num_classes=num_classes)
