"""The model zoo: AlexNet (Caffe, as in the paper, and torchvision), VGG-16 and ResNet-50, layer by layer;
GPT-3 (125M to 175B), Llama 2 (7B, 13B, 70B) and Llama 3 (8B, 70B, 405B) from :mod:`workloads.transformer`.

Every model is built from its architecture with the constructors of :mod:`workloads.build`, never from
typed-in totals; tests pin the totals to the published parameter counts and multiply-adds.

Dataset sizes: ``alexnet`` uses N = 1,200,000 (the paper: ImageNet, N = 1.2M images; docs/paper-model.md);
the other CNNs use the ImageNet-1k (ILSVRC-2012) training set, N = 1,281,167 images. A transformer's sample
is one sequence of its context length; N is its published training tokens divided by that length (GPT-3:
300B tokens; Llama 2: 2.0T; Llama 3: 15T, and 15.6T for 405B).

Examples
--------
>>> get_model("alexnet").params
60965224
>>> "resnet50" in list_models()
True
"""

from __future__ import annotations

from collections.abc import Callable

from sim.errors import UserError
from workloads.chain import Chain
from workloads.layer import Model
from workloads.transformer import TransformerConfig, build_transformer

PAPER_IMAGENET_N = 1_200_000
IMAGENET_1K_TRAIN_N = 1_281_167


def alexnet() -> Model:
    """BVLC/Caffe reference AlexNet (``bvlc_alexnet/deploy.prototxt``), the network of the paper.

    3x227x227 input; grouped conv2/4/5 (groups=2, the two-GPU split of Krizhevsky et al. 2012); LRN after
    conv1 and conv2; Caffe's ceil-mode pooling. 60,965,224 parameters.
    """
    ch = Chain("alexnet", (3, 227, 227), PAPER_IMAGENET_N)
    ch.add("conv", "conv1", out_channels=96, kernel=11, stride=4)
    ch.add("act", "relu1")
    ch.add("lrn", "norm1", size=5)
    ch.add("pool", "pool1", kernel=3, stride=2, ceil_mode=True)
    ch.add("conv", "conv2", out_channels=256, kernel=5, padding=2, groups=2)
    ch.add("act", "relu2")
    ch.add("lrn", "norm2", size=5)
    ch.add("pool", "pool2", kernel=3, stride=2, ceil_mode=True)
    ch.add("conv", "conv3", out_channels=384, kernel=3, padding=1)
    ch.add("act", "relu3")
    ch.add("conv", "conv4", out_channels=384, kernel=3, padding=1, groups=2)
    ch.add("act", "relu4")
    ch.add("conv", "conv5", out_channels=256, kernel=3, padding=1, groups=2)
    ch.add("act", "relu5")
    ch.add("pool", "pool5", kernel=3, stride=2, ceil_mode=True)
    ch.add("fc", "fc6", out_features=4096)
    ch.add("act", "relu6")
    ch.add("dropout", "drop6", p=0.5)
    ch.add("fc", "fc7", out_features=4096)
    ch.add("act", "relu7")
    ch.add("dropout", "drop7", p=0.5)
    ch.add("fc", "fc8", out_features=1000)
    return ch.model()


def alexnet_torchvision() -> Model:
    """``torchvision.models.alexnet`` (the "one weird trick" variant): 3x224x224, no groups, no LRN.

    64-192-384-256-256 channels; 61,100,840 parameters (torchvision model card).
    """
    ch = Chain("alexnet-torchvision", (3, 224, 224), IMAGENET_1K_TRAIN_N)
    for i, (cout, k, s, p, pooled) in enumerate(
            [(64, 11, 4, 2, True), (192, 5, 1, 2, True), (384, 3, 1, 1, False), (256, 3, 1, 1, False),
             (256, 3, 1, 1, True)], start=1):
        ch.add("conv", f"conv{i}", out_channels=cout, kernel=k, stride=s, padding=p)
        ch.add("act", f"relu{i}")
        if pooled:
            ch.add("pool", f"pool{i}", kernel=3, stride=2)
    # AdaptiveAvgPool2d((6, 6)) is the identity on the 6x6 map of a 224x224 input, so it is left out
    ch.add("flatten", "flatten")
    ch.add("dropout", "drop6")
    ch.add("fc", "fc6", out_features=4096)
    ch.add("act", "relu6")
    ch.add("dropout", "drop7")
    ch.add("fc", "fc7", out_features=4096)
    ch.add("act", "relu7")
    ch.add("fc", "fc8", out_features=1000)
    return ch.model()


def vgg16() -> Model:
    """VGG-16 (configuration D of Simonyan & Zisserman 2015), 3x224x224, 138,357,544 parameters."""
    ch = Chain("vgg16", (3, 224, 224), IMAGENET_1K_TRAIN_N)
    blocks = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]
    for b, (cout, n) in enumerate(blocks, start=1):
        for i in range(1, n + 1):
            ch.add("conv", f"conv{b}_{i}", out_channels=cout, kernel=3, padding=1)
            ch.add("act", f"relu{b}_{i}")
        ch.add("pool", f"pool{b}", kernel=2, stride=2)
    ch.add("flatten", "flatten")
    ch.add("fc", "fc6", out_features=4096)
    ch.add("act", "relu6")
    ch.add("dropout", "drop6")
    ch.add("fc", "fc7", out_features=4096)
    ch.add("act", "relu7")
    ch.add("dropout", "drop7")
    ch.add("fc", "fc8", out_features=1000)
    return ch.model()


def _bottleneck(ch: Chain, prefix: str, width: int, stride: int, project: bool) -> None:
    """One ResNet v1.5 bottleneck: 1x1 -> 3x3 (stride here) -> 1x1 (x4), batch-norm after each conv."""
    block_in = ch.last
    ch.add("conv", f"{prefix}.conv1", out_channels=width, kernel=1, bias=False)
    ch.add("norm", f"{prefix}.bn1")
    ch.add("act", f"{prefix}.relu1")
    ch.add("conv", f"{prefix}.conv2", out_channels=width, kernel=3, stride=stride, padding=1, bias=False)
    ch.add("norm", f"{prefix}.bn2")
    ch.add("act", f"{prefix}.relu2")
    ch.add("conv", f"{prefix}.conv3", out_channels=4 * width, kernel=1, bias=False)
    main = ch.add("norm", f"{prefix}.bn3")
    shortcut = block_in
    if project:
        ch.add("conv", f"{prefix}.downsample.conv", inputs=(block_in,), out_channels=4 * width, kernel=1,
               stride=stride, bias=False)
        shortcut = ch.add("norm", f"{prefix}.downsample.bn")
    ch.add("add", f"{prefix}.add", inputs=(main, shortcut))
    ch.add("act", f"{prefix}.relu")


def resnet50() -> Model:
    """ResNet-50 as in ``torchvision.models.resnet50`` (v1.5: stride on the 3x3 conv), 25,557,032 parameters.

    Stem 7x7/2 conv + BN + ReLU + 3x3/2 max pool; stages of 3, 4, 6, 3 bottlenecks of widths 64, 128, 256,
    512 (outputs x4); projection shortcut (1x1 conv + BN) on the first block of each stage; global average
    pool; fc 2048 -> 1000. Residual joins are ``add`` layers whose ``inputs`` name both branches.
    """
    ch = Chain("resnet50", (3, 224, 224), IMAGENET_1K_TRAIN_N)
    ch.add("conv", "conv1", out_channels=64, kernel=7, stride=2, padding=3, bias=False)
    ch.add("norm", "bn1")
    ch.add("act", "relu")
    ch.add("pool", "maxpool", kernel=3, stride=2, padding=1)
    for stage, (width, blocks, stride) in enumerate([(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)], start=1):
        for b in range(blocks):
            _bottleneck(ch, f"layer{stage}.{b}", width, stride if b == 0 else 1, project=(b == 0))
    _, h, w = ch.shape_of(ch.last)
    ch.add("pool", "avgpool", kernel=(h, w), stride=1, op="avg")
    ch.add("flatten", "flatten")
    ch.add("fc", "fc", out_features=1000)
    return ch.model()


def _gpt3(name: str, layers: int, hidden: int, heads: int) -> TransformerConfig:
    """A GPT-3 of Brown et al. 2020, Table 2.1 (n_layers, d_model, n_heads; d_ff = 4 d_model, vocabulary
    50257, context 2048, GPT-2's pre-norm blocks with biases, learned positions, tied output embedding),
    trained on 300B tokens."""
    return TransformerConfig(name, layers, hidden, heads, ffn=4 * hidden, vocab=50257, seq_len=2048, mlp="gelu",
                             norm="layernorm", bias=True, tied_embeddings=True, positions="learned",
                             max_positions=2048, dataset_tokens=300 * 10**9)


def _llama(name: str, layers: int, hidden: int, heads: int, kv_heads: int, ffn: int, vocab: int, seq_len: int,
           tokens: int) -> TransformerConfig:
    """A Llama: RMSNorm, SwiGLU, RoPE, no biases, untied output embedding (the HF ``config.json``)."""
    return TransformerConfig(name, layers, hidden, heads, ffn, vocab, seq_len, kv_heads=kv_heads, mlp="swiglu",
                             norm="rmsnorm", positions="rope", dataset_tokens=tokens)


#: the zoo's transformers: GPT-3 sizes of Brown et al. 2020, Table 2.1 (two rows do not add up: 13B prints
#: d_model 5140, which is not n_heads * d_head = 40 * 128, so 5120 is used; 1.3B prints 24 heads of 128 for a
#: d_model of 2048, while its 1.3B total needs n_heads * d_head = d_model, so 16 heads of 128); Llama 2 of Touvron et al. 2023 (HF config.json
#: of meta-llama/Llama-2-*-hf; context 4096, 2.0T tokens); Llama 3 of "The Llama 3 Herd of Models" 2024,
#: Table 3 (HF config.json of meta-llama/Meta-Llama-3-8B, -70B and Llama-3.1-405B; pre-training context 8192;
#: 15T tokens, 15.6T for 405B)
TRANSFORMERS: dict[str, TransformerConfig] = {
    cfg.name: cfg for cfg in (
        _gpt3("gpt3-125m", 12, 768, 12),
        _gpt3("gpt3-350m", 24, 1024, 16),
        _gpt3("gpt3-760m", 24, 1536, 16),
        _gpt3("gpt3-1.3b", 24, 2048, 16),
        _gpt3("gpt3-2.7b", 32, 2560, 32),
        _gpt3("gpt3-6.7b", 32, 4096, 32),
        _gpt3("gpt3-13b", 40, 5120, 40),
        _gpt3("gpt3-175b", 96, 12288, 96),
        _llama("llama2-7b", 32, 4096, 32, 32, 11008, 32000, 4096, 2 * 10**12),
        _llama("llama2-13b", 40, 5120, 40, 40, 13824, 32000, 4096, 2 * 10**12),
        _llama("llama2-70b", 80, 8192, 64, 8, 28672, 32000, 4096, 2 * 10**12),
        _llama("llama3-8b", 32, 4096, 32, 8, 14336, 128256, 8192, 15 * 10**12),
        _llama("llama3-70b", 80, 8192, 64, 8, 28672, 128256, 8192, 15 * 10**12),
        _llama("llama3-405b", 126, 16384, 128, 8, 53248, 128256, 8192, 15_600 * 10**9),
    )
}


def get_transformer_config(name: str) -> TransformerConfig:
    """The :class:`TransformerConfig` of zoo transformer ``name`` (``gpt3-175b``, ``llama3-8b``, ...).

    Raises
    ------
    UserError
        ``model`` field, for a name that is not a zoo transformer.
    """
    if name not in TRANSFORMERS:
        raise UserError("model", f"{name!r} is not a zoo transformer", f"one of {', '.join(TRANSFORMERS)}")
    return TRANSFORMERS[name]


def _transformer_builder(name: str) -> Callable[[], Model]:
    return lambda: build_transformer(TRANSFORMERS[name])


#: name -> builder, in listing order
ZOO: dict[str, Callable[[], Model]] = {
    "alexnet": alexnet,
    "alexnet-torchvision": alexnet_torchvision,
    "vgg16": vgg16,
    "resnet50": resnet50,
    **{name: _transformer_builder(name) for name in TRANSFORMERS},
}


def list_models() -> list[str]:
    """Names of the zoo models, in listing order."""
    return list(ZOO)


def get_model(name: str) -> Model:
    """Build the zoo model ``name``.

    Parameters
    ----------
    name : str
        One of :func:`list_models`.

    Returns
    -------
    Model

    Raises
    ------
    UserError
        ``model`` field, for an unknown name.
    """
    if name not in ZOO:
        raise UserError("model", f"{name!r} is not a zoo model", f"one of {', '.join(ZOO)} or a .yaml file")
    return ZOO[name]()
