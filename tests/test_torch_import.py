"""PyTorch import (``--model torch:FILE_OR_MODULE:FACTORY --input-shape ...``): parameters and FLOPs equal
torch's own counts, torchvision's architectures equal the zoo's layer by layer, and every bad input is a
one-line error with exit 2.

The torchvision architectures are the module-by-module copies in tests/torch_nets.py (torchvision cannot be
imported beside CI's CPU build of torch; see that file). FLOPs: ``FlopCounterMode`` counts 2 per multiply-add
of convolutions, matrix products (linear, without the bias add) and batched matrix products, nothing for
elementwise ops, norms or pooling; dnnsim's ``conv``, ``fc`` and ``attention`` layers count the same, so the
sum over those kinds is compared with FlopCounterMode's total divided by the batch.
"""

from __future__ import annotations

import json
import math
import textwrap

import pytest

torch = pytest.importorskip("torch")

import torch_nets  # noqa: E402  (needs torch)
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from sim.cli import main  # noqa: E402
from sim.errors import UserError  # noqa: E402
from workloads.loader import load_model  # noqa: E402
from workloads.torch_import import import_model, parse_input_shape  # noqa: E402
from workloads.zoo import get_model  # noqa: E402

MATMUL_KINDS = ("conv", "fc", "attention")

#: torchvision's model cards (pytorch.org/vision/stable/models.html): "Params" and "GFLOPS" (the latter
#: are billions of multiply-adds per 224x224 image, rounded to two decimals)
PUBLISHED = {
    "alexnet": (61_100_840, 0.71),
    "vgg16": (138_357_544, 15.47),
    "resnet18": (11_689_512, 1.81),
    "resnet50": (25_557_032, 4.09),
}


def torch_flops_per_sample(module, input_shape: tuple[int, ...], batch: int = 2, device: str = "meta") -> float:
    """FlopCounterMode's forward total for ``batch`` samples, divided by ``batch`` (grad on: with grad off
    nn.MultiheadAttention takes a fused path FlopCounterMode does not see)."""
    module.eval()
    with FlopCounterMode(display=False) as counter:
        module(torch.zeros((batch, *input_shape), device=device))
    return counter.get_total_flops() / batch


def matmul_flops(model) -> float:
    return math.fsum(layer.fwd_flops_per_sample for layer in model.layers if layer.kind in MATMUL_KINDS)


# ------------------------------------------------------------------------------------------ shapes
@pytest.mark.parametrize("text, shape", [("3x224x224", (3, 224, 224)), ("784", (784,)), (784, (784,)),
                                         ("64X512", (64, 512)), ([3, 32, 32], (3, 32, 32))])
def test_parse_input_shape(text, shape):
    assert parse_input_shape(text) == shape


@pytest.mark.parametrize("text", ["3x0x2", "3xx2", "a", "", "1x2x3x4", -3, 2.5, [3, "b"]])
def test_parse_input_shape_bad(text):
    with pytest.raises(UserError) as exc:
        parse_input_shape(text)
    assert exc.value.field == "input_shape"


# ------------------------------------------------------------------------------------------ torchvision
@pytest.mark.parametrize("name", list(PUBLISHED))
def test_torchvision_params_and_flops(name):
    model = import_model(f"torch:torch_nets:{name}", "3x224x224")
    with torch.device("meta"):
        module = getattr(torch_nets, name)()
    params, gmacs = PUBLISHED[name]
    assert model.params == sum(p.numel() for p in module.parameters()) == params
    assert matmul_flops(model) == torch_flops_per_sample(module, (3, 224, 224))
    assert round(matmul_flops(model) / 2 / 1e9, 2) == gmacs


@pytest.mark.parametrize("zoo, name", [("alexnet-torchvision", "alexnet"), ("vgg16", "vgg16"),
                                       ("resnet50", "resnet50")])
def test_torchvision_equals_zoo_layer_by_layer(zoo, name):
    """Everything but the layer names: kind, shapes, kernel, stride, padding, groups, params, FLOPs, op
    and the wiring (producers compared by position)."""
    imported, ours = import_model(f"torch:torch_nets:{name}", "3x224x224"), get_model(zoo)
    assert imported.input_shape == ours.input_shape and len(imported.layers) == len(ours.layers)
    assert imported.dataset_size == ours.dataset_size  # ImageNet-1k's 1,281,167 training images

    def fields(model):
        index = {layer.name: i for i, layer in enumerate(model.layers)}
        return [(layer.kind, layer.in_shape, layer.out_shape, layer.kernel, layer.stride, layer.padding,
                 layer.groups, layer.params, layer.fwd_flops_per_sample, layer.op,
                 tuple(index[p] for p in layer.inputs)) for layer in model.layers]

    for i, (a, b) in enumerate(zip(fields(imported), fields(ours), strict=True)):
        assert a == b, (i, imported.layers[i].name, ours.layers[i].name)


def test_resnet_names_and_wiring():
    model = import_model("torch:torch_nets:resnet18", "3x224x224")
    by = {layer.name: layer for layer in model.layers}
    # BasicBlock calls its one ReLU module twice: the second call gets a suffix
    assert by["layer1.0.relu"].out_shape == (64, 56, 56) and "layer1.0.relu_2" in by
    # layer2.0's shortcut: the 1x1/2 projection reads the block input, the add joins both branches
    assert by["layer2.0.downsample.0"].inputs == ("layer1.1.relu_2",)
    assert by["layer2.0.downsample.0"].kernel == (1, 1) and by["layer2.0.downsample.0"].stride == (2, 2)
    adds = [layer for layer in model.layers if layer.kind == "add"]
    assert len(adds) == 8 and adds[2].inputs == ("layer2.0.bn2", "layer2.0.downsample.1")
    # global average pool of the 7x7 map: one 7x7 window, as the zoo writes it
    assert by["avgpool"].kernel == (7, 7) and by["avgpool"].out_shape == (512, 1, 1)


# ------------------------------------------------------------------------------------------ small nets
def test_small_cnn_counts_equal_torch():
    module = torch_nets.SmallNet()
    model = import_model("torch:torch_nets:SmallNet", "3x16x16")
    assert model.params == sum(p.numel() for p in module.parameters())
    assert matmul_flops(model) == torch_flops_per_sample(module, (3, 16, 16), batch=3, device="cpu")
    by = {layer.name: layer for layer in model.layers}
    # written out: stem 3->8 3x3 on 16x16, branch grouped (2) 8->8 3x3 no bias, side 8->4 1x1, fc 12->16->10
    assert by["stem"].fwd_flops_per_sample == 2 * 9 * 3 * 8 * 16 * 16
    assert by["branch"].params == 9 * 4 * 8 and by["branch"].groups == 2
    assert by["add"].inputs == ("relu", "gelu") and by["cat"].out_shape == (12, 16, 16)
    assert by["cat"].inputs == ("add", "sigmoid")
    assert by["avg"].out_shape == (12, 5, 5)  # ceil mode: (8 + 2*1 - 3) / 2 = 3.5 rounded up, + 1
    assert by["gap"].kernel == (5, 5) and by["view"].kind == "flatten" and by["view"].out_shape == (12,)
    assert [by[n].kind for n in ("lrn", "drop", "tanh", "soft")] == ["lrn", "dropout", "act", "softmax"]


def test_tiny_encoder_attention():
    s, f, e = 10, 12, 32
    module = torch_nets.TinyEncoder(f, e, heads=4)
    model = import_model("torch:torch_nets:TinyEncoder", f"{s}x{f}")
    assert model.params == sum(p.numel() for p in module.parameters())
    assert matmul_flops(model) == torch_flops_per_sample(module, (s, f), batch=3, device="cpu")
    by = {layer.name: layer for layer in model.layers}
    assert by["attn.in_proj"].out_shape == (s, 3 * e) and by["attn.in_proj"].params == 3 * e * e + 3 * e
    assert by["attn.attention"].fwd_flops_per_sample == 4 * s * s * e and by["attn.attention"].params == 0
    assert by["attn.attention"].op == "heads=4,kv_heads=4,head_dim=8,causal=false"
    assert by["norm1"].params == 2 * e and by["norm1"].op == "layernorm"
    assert by["add"].inputs == ("embed", "attn.out_proj")


# ------------------------------------------------------------------------------------------ files and CLI
NET_PY = textwrap.dedent("""
    import torch
    from torch import nn

    def build():
        return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                             nn.Linear(16 * 16 * 16, 10))

    not_callable = 3

    def raises():
        raise RuntimeError("no weights here")

    def not_a_module():
        return [1, 2]

    def silu():
        return nn.Sequential(nn.Conv2d(3, 4, 3), nn.SiLU())

    def exp():
        return Exp()

    def weights():
        return Weights()

    class Exp(nn.Module):
        def forward(self, x):
            return torch.exp(x)

    class Branchy(nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x

    class Weights(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(8, 2, batch_first=True)

        def forward(self, x):
            return self.attn(x, x, x)[1]
""")

SAME_YAML = textwrap.dedent("""
    name: same
    input_shape: [3, 32, 32]
    dataset_size: 1281167
    layers:
      - {kind: conv, out_channels: 16, kernel: 3, padding: 1}
      - {kind: act}
      - {kind: pool, kernel: 2}
      - {kind: flatten}
      - {kind: fc, out_features: 10}
""")


@pytest.fixture()
def net_py(tmp_path):
    path = tmp_path / "mynet.py"
    path.write_text(NET_PY)
    return path


def test_file_model_runs_like_its_yaml_twin(tmp_path, net_py, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "same.yaml").write_text(SAME_YAML)
    imported = load_model("torch:./mynet.py:build", "3x32x32")
    twin = load_model(str(tmp_path / "same.yaml"))
    assert imported.name == "mynet.build"
    assert [(x.kind, x.out_shape, x.params, x.fwd_flops_per_sample) for x in imported.layers] == [
        (x.kind, x.out_shape, x.params, x.fwd_flops_per_sample) for x in twin.layers]
    argv = ["--input-shape", "3x32x32", "--procs", "4", "--batch", "8", "--strategy", "integrated", "--format", "json"]
    assert main(["run", "--model", "torch:./mynet.py:build", *argv]) == 0
    ran = json.loads(capsys.readouterr().out)
    assert main(["run", "--model", "same.yaml", *argv[2:]]) == 0
    twin_ran = json.loads(capsys.readouterr().out)
    assert ran["model"] == "mynet.build" and twin_ran["model"] == "same"
    for key in ("iteration_s", "epoch_s", "bytes_sent_per_rank", "memory_per_rank_bytes"):
        assert ran[key] == twin_ran[key], key


def test_show_model_torch(capsys):
    assert main(["show-model", "torch:torch_nets:resnet18", "--input-shape", "3x224x224", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["layer"] == "conv1" and rows[0]["out_shape"] == "64x112x112"
    assert sum(r["params"] for r in rows) == PUBLISHED["resnet18"][0]


@pytest.mark.parametrize("spec, shape, words", [
    ("torch:./mynet.py:not_callable", "3x32x32", "model: ./mynet.py:not_callable is a int, not callable"),
    ("torch:./mynet.py:build", None, "input_shape: is missing for torch:./mynet.py:build"),
    ("torch:./mynet.py:Branchy", "3x32x32", "model: torch.fx cannot trace mynet.Branchy"),
    ("torch:./mynet.py:silu", "3x32x32", "model: SiLU (module 1) cannot be mapped to a dnnsim layer; supported:"),
    ("torch:./mynet.py:exp", "3x32x32", "model: function exp (node exp) cannot be mapped"),
    ("torch:./mynet.py:weights", "5x8", "MultiheadAttention (module attn) with its attention weights used"),
    ("torch:./mynet.py:build", "3x30x32", "input_shape: mynet.build fails on a 3x30x32 input at Linear (module 4)"),
    ("torch:./mynet.py:raises", "3x32x32", "model: raises() raised RuntimeError: no weights here"),
    ("torch:./mynet.py:not_a_module", "3x32x32", "model: not_a_module() returned a list, not a torch.nn.Module"),
    ("torch:./mynet.py:nothing", "3x32x32", "model: './mynet.py' has no 'nothing'"),
    ("torch:./missing.py:build", "3x32x32", "model: file './missing.py' does not exist"),
    ("torch:no_such_package.mod:build", "3x32x32", "model: cannot import 'no_such_package.mod'"),
    ("torch:resnet18", "3x32x32", "model: 'torch:resnet18' is not a torch model spec"),
    ("alexnet", "3x227x227", "input_shape: '3x227x227' is given but model 'alexnet' is not a torch: model"),
])
def test_bad_input_one_line_exit_2(tmp_path, net_py, monkeypatch, capsys, spec, shape, words):
    monkeypatch.chdir(tmp_path)
    argv = ["show-model", spec] + (["--input-shape", shape] if shape else [])
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and words in err[0], err
    if "cannot be mapped" in words:
        assert "Conv2d, Linear" in err[0]  # what is supported


def test_run_without_input_shape_exit_2(tmp_path, net_py, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--model", "torch:./mynet.py:build", "--procs", "2", "--batch", "4"]) == 2
    assert capsys.readouterr().err.strip().startswith("error: input_shape: is missing")


def test_docstring_examples():
    import doctest

    import workloads.torch_import

    result = doctest.testmod(workloads.torch_import)
    assert result.attempted > 0 and result.failed == 0
