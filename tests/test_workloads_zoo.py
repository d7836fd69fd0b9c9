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
    assert m.dataset_size == 1_200_000  # Gholami et al. 2018: N = 1.2M
    assert len(m.weight_layers()) == 8  # 5 conv + 3 fc
    # Sze et al., "Efficient Processing of Deep Neural Networks", Proc. IEEE 2017, Table: AlexNet 724M MACs
    assert _macs(m) == pytest.approx(724e6, rel=1e-3)


@pytest.mark.parametrize("name, gmacs", [
    # torchvision.models docs, "GFLOPS" column (which counts multiply-adds): vgg16 15.47, resnet50 4.09
    ("vgg16", 15.47),
    ("resnet50", 4.09),
    ("alexnet-torchvision", 0.71),
])
def test_forward_macs_match_published(name, gmacs):
    m = get_model(name)
    assert _macs(m) / 1e9 == pytest.approx(gmacs, rel=1e-2)
    # the other layers (pool, act, norm, add) add under 1% on top
    assert m.fwd_flops_per_sample / 2 / 1e9 == pytest.approx(gmacs, rel=1e-2)


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


def test_deterministic():
    assert get_model("resnet50") == get_model("resnet50")
