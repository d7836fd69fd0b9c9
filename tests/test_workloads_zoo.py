"""Model zoo: parameter counts and multiply-adds against published totals, shapes, DAG wiring."""

from __future__ import annotations

import pytest

from sim.errors import UserError
from workloads.zoo import IMAGENET_1K_TRAIN_N, get_model, list_models


def _macs(model, kinds=("conv", "fc")) -> float:
    return sum(layer.fwd_flops_per_sample for layer in model.layers if layer.kind in kinds) / 2


@pytest.mark.parametrize("name, params", [
    # BVLC reference CaffeNet/AlexNet (bvlc_alexnet deploy.prototxt); sum of the 8 layers written out:
    # 96*3*11*11+96 + 256*48*5*5+256 + 384*256*3*3+384 + 384*192*3*3+384 + 256*192*3*3+256
    # + 9216*4096+4096 + 4096*4096+4096 + 4096*1000+1000
    ("alexnet", 60_965_224),
    # torchvision model cards ("num_params"), torchvision.models docs
    ("alexnet-torchvision", 61_100_840),
    ("vgg16", 138_357_544),
    ("resnet50", 25_557_032),
])
def test_params_match_published(name, params):
    assert get_model(name).params == params


def test_alexnet_layerwise_formula():
    m = get_model("alexnet")
    by = {layer.name: layer for layer in m.layers}
    assert by["conv2"].params == 256 * 48 * 5 * 5 + 256  # groups=2: each filter sees 96/2 channels
    assert by["fc6"].in_shape == (256, 6, 6) and by["fc6"].params == 9216 * 4096 + 4096
    assert [by[n].out_shape for n in ("conv1", "pool1", "pool2", "pool5")] == [
        (96, 55, 55), (96, 27, 27), (256, 13, 13), (256, 6, 6)]
    assert m.dataset_size == 1_200_000  # Gholami et al. 2018: ImageNet, N = 1.2M images
    assert len(m.weight_layers()) == 8  # 5 conv + 3 fc
    # Sze et al., "Efficient Processing of Deep Neural Networks", Proc. IEEE 2017, Table: AlexNet 724M MACs
    assert _macs(m) == pytest.approx(724e6, abs=0.5e6)  # 724,406,816 to the published 3 digits


@pytest.mark.parametrize("name, gmacs", [
    # torchvision.models docs, "GFLOPS" column (which counts multiply-adds): vgg16 15.47, resnet50 4.09
    ("vgg16", 15.47),
    ("resnet50", 4.09),
    ("alexnet-torchvision", 0.71),
])
def test_forward_macs_match_published(name, gmacs):
    m = get_model(name)
    assert _macs(m) / 1e9 == pytest.approx(gmacs, abs=0.005)  # to the published 2 decimals
    # the other layers (pool, act, norm, add) add under 1% on top (0.06% VGG-16 .. 0.5% ResNet-50)
    assert 1 < m.fwd_flops_per_sample / 2 / _macs(m) < 1.006


def test_resnet50_dag():
    m = get_model("resnet50")
    names = [layer.name for layer in m.layers]
    assert len(set(names)) == len(names)
    adds = [layer for layer in m.layers if layer.kind == "add"]
    assert len(adds) == 3 + 4 + 6 + 3  # one residual join per bottleneck
    produced = set()
    for layer in m.layers:  # every named input is produced before it is consumed
        assert all(p in produced for p in layer.inputs)
        produced.add(layer.name)
    projections = [layer for layer in m.layers if layer.name.endswith("downsample.conv")]
    assert len(projections) == 4 and all(p.inputs for p in projections)
    by = {layer.name: layer for layer in m.layers}
    assert by["layer2.0.downsample.conv"].in_shape == (256, 56, 56)
    assert by["layer2.0.downsample.conv"].out_shape == (512, 28, 28)
    assert by["layer2.0.add"].inputs == ("layer2.0.bn3", "layer2.0.downsample.bn")
    assert by["layer1.1.add"].inputs == ("layer1.1.bn3", "layer1.0.relu")
    bn_params = sum(layer.params for layer in m.layers if layer.kind == "norm")
    # 2 per channel of every BN: stem 64 + per stage blocks*(w + w + 4w) + projection 4w
    expected = 64 + sum(n * 6 * w + 4 * w for w, n in [(64, 3), (128, 4), (256, 6), (512, 3)])
    assert bn_params == 2 * expected
    assert m.dataset_size == IMAGENET_1K_TRAIN_N == 1_281_167


def test_registry():
    assert list_models()[:4] == ["alexnet", "alexnet-torchvision", "vgg16", "resnet50"]
    with pytest.raises(UserError) as exc:
        get_model("nope")
    assert exc.value.field == "model" and "alexnet" in exc.value.allowed


def _conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output rows of a convolution or pooling: ⌊(size + 2 padding − kernel) / stride⌋ + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def test_vgg16_shapes_and_macs_by_hand():
    """Simonyan & Zisserman 2015, Table 1 (configuration D): 3x3 convolutions, stride 1, padding 1, in five
    stages of 2, 2, 3, 3, 3 layers of 64, 128, 256, 512, 512 channels, each stage closed by a 2x2 max-pool."""
    by = {layer.name: layer for layer in get_model("vgg16").layers}
    cin, size, macs = 3, 224, 0
    for stage, (width, n) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)], start=1):
        for i in range(1, n + 1):
            conv = by[f"conv{stage}_{i}"]
            assert conv.in_shape == (cin, size, size) and conv.out_shape == (width, size, size)
            assert conv.params == 3 * 3 * cin * width + width
            macs += 3 * 3 * cin * width * size * size
            cin = width
        size = _conv_out(size, 2, 2, 0)
        assert by[f"pool{stage}"].out_shape == (width, size, size)
    assert size == 7
    assert by["fc6"].params == 512 * 7 * 7 * 4096 + 4096 == 102_764_544
    macs += 512 * 7 * 7 * 4096 + 4096 * 4096 + 4096 * 1000
    assert _macs(get_model("vgg16")) == macs  # 15,470,264,320: torchvision's 15.47 GMAC


def test_alexnet_torchvision_shapes_by_hand():
    """torchvision's AlexNet (the one-GPU variant of Krizhevsky 2014): 64/192/384/256/256 filters,
    conv1 11x11 stride 4 padding 2, 3x3 stride 2 max-pools."""
    by = {layer.name: layer for layer in get_model("alexnet-torchvision").layers}
    s1 = _conv_out(224, 11, 4, 2)
    p1 = _conv_out(s1, 3, 2, 0)
    p2 = _conv_out(p1, 3, 2, 0)  # conv2 is 5x5 padding 2: same size
    p5 = _conv_out(p2, 3, 2, 0)  # conv3-5 are 3x3 padding 1: same size
    assert (s1, p1, p2, p5) == (55, 27, 13, 6)
    assert by["conv1"].out_shape == (64, s1, s1) and by["pool1"].out_shape == (64, p1, p1)
    assert by["conv2"].out_shape == (192, p1, p1) and by["conv2"].params == 5 * 5 * 64 * 192 + 192
    assert by["pool5"].out_shape == (256, p5, p5)
    assert by["fc6"].params == 256 * 6 * 6 * 4096 + 4096


def test_resnet50_shapes_by_hand():
    """He et al. 2016, Table 1 (50-layer): 7x7/2 stem, 3x3/2 max-pool, then stages at 56, 28, 14, 7 pixels
    with bottleneck widths 64..512 (outputs 4x), the stride on the 3x3 (torchvision's v1.5)."""
    by = {layer.name: layer for layer in get_model("resnet50").layers}
    assert by["conv1"].out_shape == (64, 112, 112) and by["conv1"].params == 7 * 7 * 3 * 64  # no bias
    assert by["maxpool"].out_shape == (64, 56, 56)
    for stage, (width, size) in enumerate([(64, 56), (128, 28), (256, 14), (512, 7)], start=1):
        assert by[f"layer{stage}.0.conv2"].out_shape == (width, size, size)
        assert by[f"layer{stage}.0.conv3"].out_shape == (4 * width, size, size)
        assert by[f"layer{stage}.0.conv3"].params == 4 * width * width  # 1x1, no bias (BN follows)
    assert by["fc"].in_elems_per_sample == 2048 and by["fc"].params == 2048 * 1000 + 1000
