import pytest
import torch

from boresnet.training.resnet import ResidualBlock, ResNet, StageSpec, resnet9


@pytest.mark.parametrize("width", [4, 16, 64])
def test_resnet9_output_shape(width):
    net = resnet9(width=width)
    assert net(torch.randn(3, 1, 28, 28)).shape == (3, 10)


def test_resnet9_parameter_count_is_classic():
    n = sum(p.numel() for p in resnet9().parameters())
    assert 6.4e6 < n < 6.7e6, n


def test_width_scales_every_stage():
    net = resnet9(width=16)
    assert net.prep[0].out_channels == 16
    assert [
        net.stage1[0][0].out_channels,
        net.stage2[0][0].out_channels,
        net.stage3[0][0].out_channels,
    ] == [32, 64, 128]
    assert net.head.in_features == 128


def test_identity_and_projection_shortcuts():
    same = ResidualBlock(8, 8)
    assert not same.has_projection
    assert same(torch.randn(2, 8, 10, 10)).shape == (2, 8, 10, 10)
    wider = ResidualBlock(8, 16)
    assert wider.has_projection
    assert wider(torch.randn(2, 8, 10, 10)).shape == (2, 16, 10, 10)
    strided = ResidualBlock(8, 8, stride=2)
    assert strided.has_projection
    assert strided(torch.randn(2, 8, 10, 10)).shape == (2, 8, 5, 5)
    assert ResidualBlock(8, 8, projection=True).has_projection


@pytest.mark.parametrize("convs", [1, 2, 3])
def test_convs_per_block(convs):
    block = ResidualBlock(4, 4, num_convs=convs)
    assert sum(isinstance(m, torch.nn.Conv2d) for m in block.body.modules()) == convs


def test_custom_stages_and_depths():
    net = ResNet(
        [
            StageSpec(8, blocks=2),
            StageSpec(16, blocks=0, pool=False),
            StageSpec(32, blocks=1, convs_per_block=3),
        ],
        prep_channels=4,
    )
    assert net(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    deeper = resnet9(width=4, blocks=(2, 1, 2))
    assert sum(isinstance(m, ResidualBlock) for m in deeper.modules()) == 5


def test_reset_parameters_reinitialises():
    net = resnet9(width=4)
    before = net.stage1[0][0].weight.clone()
    net.reset_parameters()
    assert not torch.equal(before, net.stage1[0][0].weight)


def test_invalid_shapes_rejected():
    with pytest.raises(ValueError):
        resnet9(width=0)
    with pytest.raises(ValueError):
        ResidualBlock(4, 4, num_convs=0)
