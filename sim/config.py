"""The run configuration: one typed, validated :class:`RunConfig` per simulated training iteration.

A run is configured from a YAML file, then command-line flags, then ``--set key=value`` pairs, each
overriding the one before (:func:`load_config`). Fields are checked one by one here (types, names,
units); checks that need the model and the topology (grid fits the batch and the layers, procs fits the
hosts) are done by :func:`validate_against_model` once those are loaded. Every mistake is raised as a
one-line :class:`~sim.errors.UserError`, never as a pydantic dump.

Strategies and grids (docs/paper-model.md, docs/cli.md)
-------------------------------------------------------
``strategy``
    ``batch``: every layer batch-parallel over all P (grid ``1xP``, Eq. 4).
    ``model``: every weight layer's W split by rows over all P (grid ``Px1``, Eq. 3).
    ``domain``: convolutions split along image height over all P, fully connected layers per ``fc``
    (default ``batch``: ΔW all-reduced over all P, which is Eq. 7's last sum), grid ``Px1``.
    ``integrated``: the Pr x Pc grid; convolutions per ``conv`` and fully connected layers per ``fc``.
    Default ``conv=model, fc=model``: every weight layer on the grid, which is Eq. 8. The paper's other
    variants are ``conv=batch`` (convolutions pure batch over all P, fc on the grid) and
    ``conv=domain`` (Eq. 9).
``conv_grid``
    ``"PrxPc"``: a grid of its own for the convolutions (strategy ``integrated``, conv ``domain`` or
    ``model``, fc ``model``), while ``grid`` stays the fully connected layers' grid; its Pr must divide the
    fc grid's Pr (see :mod:`sim.strategies.layout` for the redistribution between the two). Omitted, or
    equal to ``grid``: one grid for every layer, as before.
``grid``
    ``"PrxPc"``; when omitted: ``batch`` -> ``1xP``, ``model``/``domain`` -> ``Px1``, ``integrated`` ->
    the most nearly square factorization with Pr <= Pc.

Defaults: AlexNet, B = 256, P = 16, pure batch on the paper's network (α = 2 µs, 6 GiB/s), ``analytic``
network, ``compute: none`` — the paper's Eqs. 3-9 count communication only, so with no compute model a
run's ``iteration_s`` is exactly those equations; ``compute: paper-knl`` adds the paper's measured KNL
compute (its Fig. 4 table).

Uneven splits (``uneven``)
    ``allow`` (the default): B need not be a multiple of Pc (or of P), nor a layer's rows or image
    height a multiple of Pr; the critical rank holds the larger share, ⌈B/Pc⌉ samples, ⌈rows/Pr⌉ rows,
    ⌈H/Pr⌉ image rows (:mod:`sim.strategies.layout` for compute, :mod:`sim.strategies.common` for
    message sizes: real B/Pc under the paper's costs, padded blocks with real algorithms). An epoch is
    still N/B iterations. ``reject``: every split must be even — B a multiple of Pc (model/domain
    layers) and of P (batch layers over all P), a model layer's rows and a domain layer's output
    height multiples of Pr — as in frameworks that require divisibility (Megatron-LM's tensor
    parallelism asserts it, ``ensure_divisibility`` in megatron/core/utils.py); anything else is a
    :class:`UserError`. Either way Pc <= B, P <= B for batch layers, and Pr <= rows, Pr <= height.

Framework behaviour (``overlap``, ``bucket_mb``, ``host_overhead``)
    ``overlap`` and gradient bucketing are separate choices. ``bucket_mb`` is the bucket size in MiB
    (PyTorch DDP's ``bucket_cap_mb``, 25 by default there). With ``overlap: true`` ΔW all-reduces run in
    buckets of ``bucket_mb`` (25 when not given) on the comm stream; with ``overlap: false`` they run
    bucketed but blocking when ``bucket_mb`` is given, and one per layer (today's default, the paper's
    sums) when it is not. ``host_overhead`` (a time, e.g. ``2ms``; default 0) is a fixed host cost per
    iteration (optimizer step, data loading), run after the last ΔW all-reduce has finished and
    reported as ``host_overhead_s`` in the summary. The defaults leave every earlier result unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sim.errors import UserError
from sim.grid import all_grids, parse_grid, parse_placement
from sim.units import parse_time
from sim.yamlfile import read_yaml_mapping

STRATEGIES = ("batch", "model", "domain", "integrated")
CONV_MODES = ("batch", "model", "domain")
FC_MODES = ("batch", "model")
NETWORKS = ("analytic", "flow", "step")
UNEVEN = ("allow", "reject")

_ALLOWED: dict[str, str] = {
    "strategy": ", ".join(STRATEGIES),
    "conv": ", ".join(CONV_MODES),
    "fc": ", ".join(FC_MODES),
    "network": ", ".join(NETWORKS),
    "uneven": ", ".join(UNEVEN),
    "batch": "an integer >= 1",
    "procs": "an integer >= 1",
    "dtype_bytes": "an integer >= 1 (4 for fp32, 2 for fp16/bf16), or null for the precision's",
    "precision": "fp32, tf32, bf16, fp16, fp8 or amp",
    "memory_format": "nchw (PyTorch's default) or nhwc (channels_last)",
    "pp_split": "blocks, embedding, loss or embedding+loss",
    "cp_comm": "p2p, allgather or a2a",
    "dataset_size": "an integer >= 1, or null for the model's own N",
    "seed": "an integer",
    "overlap": "true or false",
    "ecmp": "true or false",
    "conv_grid": "PrxPc with Pr*Pc == procs, e.g. 8x512, or null for the grid of every layer",
    "bucket_mb": "a bucket size in MiB > 0 (PyTorch DDP's bucket_cap_mb, e.g. 25), or null",
    "host_overhead": "a time >= 0 such as 2ms, or seconds as a number",
}


class RunConfig(BaseModel):
    """Everything that defines one simulated run. Unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    model: str = Field("alexnet", description="Model zoo name (see `dnnsim models`), a model YAML file, or "
                                              "torch:FILE_OR_MODULE:FACTORY.")
    input_shape: str | None = Field(None, description="Per-sample input shape of a torch: model, e.g. 3x224x224.")
    batch: int = Field(256, ge=1, description="Global minibatch size B (samples per SGD iteration).")
    procs: int = Field(16, ge=1, description="Number of processes P (one per host of the topology).")
    strategy: Literal["batch", "model", "domain", "integrated", "4d"] = Field(
        "batch", description="batch (Eq. 4), model (Eq. 3), domain (Eq. 7), integrated (Eqs. 8, 9), or 4d: a "
                             "transformer on the TP x CP x PP x DP grid (implied by any of tp, cp, pp, dp).")
    grid: str | None = Field(
        None, description="Process grid PrxPc (Pr: model/domain dimension, Pc: batch dimension); "
                          "default: batch 1xP, model/domain Px1, integrated the squarest Pr<=Pc.")
    conv_grid: str | None = Field(
        None, description="Grid PrxPc of the convolution layers when it differs from the fc layers' grid "
                          "(strategy integrated, conv domain or model, fc model); default: grid.")
    conv: Literal["batch", "model", "domain"] | None = Field(
        None, description="Mode of convolution layers; default from the strategy (integrated: model).")
    fc: Literal["batch", "model"] | None = Field(
        None, description="Mode of fully connected layers; default from the strategy (domain: batch).")
    topology: str = Field("ideal:latency=2us,bandwidth=6GiB/s",
                          description="Topology spec, preset or file (see `dnnsim topologies`).")
    network: Literal["analytic", "flow", "step"] = Field(
        "analytic", description="Network model: analytic (closed forms, the paper), flow or step.")
    collectives: str = Field("paper", description="Collective algorithms: one ALG for every op, or op=ALG,...")
    compute: str = Field("none", description="Compute model: none (communication only, as the paper's "
                                             "equations), roofline:DEVICE, profile:FILE or paper-knl.")
    precision: Literal["fp32", "tf32", "bf16", "fp16", "fp8", "amp"] = Field(
        "fp32", description="Training precision (workloads/precision.py): the device peak the roofline computes "
                            "at and the bytes of activations, communication and state; fp32 is the paper's.")
    memory_format: Literal["nchw", "nhwc"] = Field(
        "nchw", description="Layout of convolution activations: nchw (PyTorch's default; tensor-core convolutions "
                            "pay cuDNN's NCHW<->NHWC transposes in the roofline) or nhwc (channels_last).")
    dtype_bytes: int | None = Field(None, ge=1, description="Bytes per word, overriding the precision's "
                                                            "(default: 4 for fp32, 2 for the 16-bit ones).")
    overlap: bool = Field(False, description="Overlap backward ΔW all-reduces (in buckets of bucket_mb, 25 MiB "
                                             "when not given, like PyTorch DDP) with the remaining backward "
                                             "compute.")
    bucket_mb: float | None = Field(
        None, gt=0, description="Gradient bucket size in MiB (DDP's bucket_cap_mb); default: 25 with overlap, "
                                "none without (one ΔW all-reduce per layer); given without overlap: blocking "
                                "buckets.")
    host_overhead: float = Field(0.0, ge=0, description="Fixed host cost per iteration in seconds (optimizer "
                                                       "step, data loading); accepts units, e.g. 2ms.")
    placement: str = Field("row-major", description="Grid placement: row-major (model groups on "
                                                    "consecutive hosts) or col-major.")
    ecmp: bool = Field(False, description="Spread flows over equal-cost paths (flow and step networks).")
    dataset_size: int | None = Field(None, ge=1, description="Training samples N per epoch; default the "
                                                             "model's own (ImageNet: 1.2M).")
    seed: int = Field(0, description="Seed for everything random (ECMP hashing).")
    tp: int | None = Field(None, ge=1, description="Tensor-parallel ranks (Megatron column/row split; 4d).")
    cp: int | None = Field(None, ge=1, description="Context-parallel ranks (ring attention over the sequence; 4d).")
    pp: int | None = Field(None, ge=1, description="Pipeline stages (4d).")
    dp: int | None = Field(None, ge=1, description="Data-parallel replicas (4d); default procs / (tp*cp*pp).")
    sp: bool = Field(True, description="Sequence parallelism inside the TP group (4d; no effect with tp 1).")
    microbatch: int = Field(1, ge=1, description="Sequences per micro-batch of one replica (4d).")
    schedule: Literal["gpipe", "1f1b", "interleaved"] = Field("1f1b", description="Pipeline schedule (4d).")
    virtual_stages: int = Field(1, ge=1, description="Model chunks per pipeline stage (4d, interleaved).")
    pp_split: Literal["blocks", "embedding", "loss", "embedding+loss"] = Field(
        "blocks", description="What the pipeline split counts (4d): transformer blocks only, or also the embedding "
                              "and/or the output layer and loss as one block each (Megatron-LM's "
                              "--account-for-embedding/loss-in-pipeline-split).")
    cp_comm: Literal["p2p", "allgather", "a2a"] = Field(
        "p2p", description="How context parallelism exchanges keys and values (4d): p2p ring attention beside "
                           "the attention, allgather or a2a (Ulysses) in line with it (Megatron-LM's "
                           "--cp-comm-type).")
    zero: Literal[0, 1, 2, 3] = Field(0, description="ZeRO stage of the data-parallel states (4d): 0 all-reduce, "
                                                     "1 optimizer, 2 + gradients, 3 + parameters (FSDP).")
    recompute: Literal["none", "selective", "full"] = Field("none", description="Activation recomputation (4d).")
    tp_overlap: bool = Field(False, description="Overlap TP collectives with the compute of their pass (4d; "
                                                "Megatron's --tp-comm-overlap with Transformer Engine).")
    seq_len: int | None = Field(None, ge=1, description="Tokens per sequence of a transformer; default the model's.")
    require_fit: bool = Field(False, description="Refuse (error) a 4d run whose memory per rank exceeds the device's.")
    uneven: Literal["allow", "reject"] = Field(
        "allow", description="Uneven splits (B not a multiple of Pc, rows or image height not of Pr): allow "
                             "(the critical rank holds the larger share) or reject.")

    @field_validator("placement")
    @classmethod
    def _placement(cls, value: str) -> str:
        return parse_placement(value)

    @field_validator("host_overhead", mode="before")
    @classmethod
    def _host_overhead(cls, value: Any) -> Any:
        return parse_time(value, field="host_overhead", allow_zero=True)

    @field_validator("input_shape", mode="before")
    @classmethod
    def _shape_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("model", "topology", "collectives", "compute")
    @classmethod
    def _nonempty(cls, value: str) -> str:
        if not str(value).strip():
            raise ValueError("must not be empty")
        return str(value).strip()

    # ------------------------------------------------------------------ derived values
    def is_4d(self) -> bool:
        """A transformer run on the TP x CP x PP x DP grid: strategy 4d, or any of tp, cp, pp, dp given."""
        return self.strategy == "4d" or any(v is not None for v in (self.tp, self.cp, self.pp, self.dp))

    def parallel(self) -> Any:
        """The :class:`sim.llm.parallel.Parallel` of a 4d run (dp defaults to procs / (tp*cp*pp))."""
        from sim.llm.parallel import Parallel

        tp, cp, pp = self.tp or 1, self.cp or 1, self.pp or 1
        if self.dp is None and self.procs % (tp * cp * pp):
            raise UserError("procs", f"{self.procs} is not a multiple of tp*cp*pp = {tp * cp * pp}",
                            "procs a multiple of tp*cp*pp, or give dp")
        dp = self.dp if self.dp is not None else self.procs // (tp * cp * pp)
        return Parallel(tp=tp, cp=cp, pp=pp, dp=dp, sp=self.sp, microbatch=self.microbatch, schedule=self.schedule,
                        virtual_stages=self.virtual_stages, zero=self.zero, recompute=self.recompute,
                        pp_split=self.pp_split, cp_comm=self.cp_comm)

    def word_bytes(self) -> int:
        """Bytes per activation and per communicated value: ``dtype_bytes`` if given, else the precision's."""
        from workloads.precision import get_precision

        return self.dtype_bytes if self.dtype_bytes is not None else get_precision(self.precision).word_bytes

    def grid_dims(self) -> tuple[int, int]:
        """``(Pr, Pc)``: the given grid, or the strategy's default (module docstring)."""
        if self.grid is not None:
            pr, pc = parse_grid(self.grid, self.procs)
        elif self.strategy == "batch":
            pr, pc = 1, self.procs
        elif self.strategy in ("model", "domain"):
            pr, pc = self.procs, 1
        else:
            pr, pc = squarest_grid(self.procs)
        if self.strategy == "batch" and pr != 1:
            raise UserError("grid", f"{pr}x{pc} has Pr={pr} but strategy batch uses no model dimension",
                            f"1x{self.procs}, or strategy integrated for a Pr x Pc grid")
        if self.strategy in ("model", "domain") and pc != 1:
            raise UserError("grid", f"{pr}x{pc} has Pc={pc} but strategy {self.strategy} has no batch "
                                    "dimension", f"{self.procs}x1, or strategy integrated")
        return pr, pc

    def conv_grid_dims(self) -> tuple[int, int] | None:
        """``(Pr_c, Pc_c)`` of a separate conv grid, or None when there is none (not given, or equal to the
        grid). Raises :class:`UserError` for a conv grid the config cannot use."""
        if self.conv_grid is None:
            return None
        pr_c, pc_c = parse_grid(self.conv_grid, self.procs, field="conv_grid")
        pr, pc = self.grid_dims()
        if (pr_c, pc_c) == (pr, pc):
            return None
        conv, fc = self.layer_modes()
        if self.strategy != "integrated":
            raise UserError("conv_grid", f"a separate conv grid needs strategy integrated, not {self.strategy}",
                            "strategy integrated with conv domain or model and fc model, or no conv_grid")
        if conv not in ("domain", "model") or fc != "model":
            raise UserError("conv_grid", f"a separate conv grid needs conv domain or model and fc model, not "
                                         f"conv {conv} and fc {fc}",
                            "conv domain or model with fc model, or no conv_grid (batch layers use all P)")
        if pr % pr_c:
            raise UserError("conv_grid", f"{pr_c}x{pc_c}: its Pr={pr_c} does not divide the fc grid's Pr={pr} "
                                         f"(grid {pr}x{pc})",
                            "a conv grid whose Pr divides the fc grid's Pr, so that every fc model group holds "
                            "whole conv grid columns")
        return pr_c, pc_c

    def layer_modes(self) -> tuple[str, str]:
        """``(conv_mode, fc_mode)`` after the strategy's defaults and consistency checks."""
        defaults = {"batch": ("batch", "batch"), "model": ("model", "model"),
                    "domain": ("domain", "batch"), "integrated": ("model", "model")}
        conv = self.conv or defaults[self.strategy][0]
        fc = self.fc or defaults[self.strategy][1]
        fixed = {"batch": ("batch", "batch"), "model": ("model", "model")}
        if self.strategy in fixed:
            want = fixed[self.strategy]
            if (conv, fc) != want:
                raise UserError("conv" if conv != want[0] else "fc",
                                f"{conv if conv != want[0] else fc!r} contradicts strategy {self.strategy}",
                                f"{want[0]} under strategy {self.strategy}, or strategy integrated")
        if self.strategy == "domain" and conv != "domain":
            raise UserError("conv", f"{conv!r} contradicts strategy domain",
                            "domain under strategy domain, or strategy integrated")
        return conv, fc

    def resolved(self) -> dict[str, Any]:
        """Plain dict of every field with derived defaults filled in (written as ``config.yaml``)."""
        out = self.model_dump()
        if self.is_4d():
            par = self.parallel()
            out.update(strategy="4d", tp=par.tp, cp=par.cp, pp=par.pp, dp=par.dp)
            return out
        pr, pc = self.grid_dims()
        out["grid"] = f"{pr}x{pc}"
        out["conv"], out["fc"] = self.layer_modes()
        conv_grid = self.conv_grid_dims()
        out["conv_grid"] = None if conv_grid is None else f"{conv_grid[0]}x{conv_grid[1]}"
        return out


# ---------------------------------------------------------------------------------------- loading
def _field_error(exc: ValidationError) -> UserError:
    """The first pydantic error as one-line :class:`UserError`."""
    err = exc.errors()[0]
    loc = err.get("loc") or ("config",)
    name = str(loc[0])
    value = err.get("input")
    if err.get("type") == "extra_forbidden":
        return UserError(name, f"unknown config key {name!r}", "one of " + ", ".join(RunConfig.model_fields))
    ctx = err.get("ctx") or {}
    if isinstance(ctx.get("error"), UserError):
        return ctx["error"]
    allowed = _ALLOWED.get(name) or RunConfig.model_fields[name].description or "see dnnsim run --help"
    msg = str(err.get("msg", "invalid")).replace("Value error, ", "")
    return UserError(name, f"{value!r} is not valid ({msg})", allowed)


#: keys that only a 4d run (tp, cp, pp, dp) uses: refused with another value than their default elsewhere
FOUR_D_ONLY = ("sp", "microbatch", "schedule", "virtual_stages", "zero", "recompute", "tp_overlap", "require_fit",
               "pp_split", "cp_comm")


def refuse_4d_only(config: RunConfig) -> None:
    """UserError for a 4d-only key (:data:`FOUR_D_ONLY`) set to other than its default on a run of the paper's
    strategies, where it would be ignored. Called where such a run is planned or searched (``dnnsim best``
    on a transformer searches the 4-D grid and uses them)."""
    for key in FOUR_D_ONLY:
        if getattr(config, key) != RunConfig.model_fields[key].default:
            raise UserError(key, f"{getattr(config, key)!r} is set, but it applies only to a 4d run",
                            "give tp, cp, pp or dp (a transformer on the 4-D grid), or leave it out")


def make_config(data: dict[str, Any] | RunConfig) -> RunConfig:
    """A validated :class:`RunConfig` from a dict (or the config itself); errors as :class:`UserError`."""
    if isinstance(data, RunConfig):
        return data
    if not isinstance(data, dict):
        raise UserError("config", f"{type(data).__name__} is not a mapping", "a dict of config keys")
    clean = {str(k).replace("-", "_"): v for k, v in data.items()}
    try:
        config = RunConfig(**clean)
    except ValidationError as exc:
        raise _field_error(exc) from None
    if config.is_4d():
        for key in ("grid", "conv_grid", "conv", "fc"):
            if getattr(config, key) is not None:
                raise UserError(key, f"is set, but a 4d run (tp, cp, pp, dp) has no {key}",
                                "leave it out, or drop tp/cp/pp/dp for the paper's strategies")
        config.parallel()
        return config
    config.grid_dims()
    config.layer_modes()
    config.conv_grid_dims()
    return config


#: top-level keys that only a sweep file has (see :mod:`sim.sweep.spec`)
SWEEP_KEYS = ("base", "vary", "zip")


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML run config file.

    Raises
    ------
    UserError
        As :func:`sim.yamlfile.read_yaml_mapping` does (missing, malformed, empty, not a mapping), and
        for a sweep file (top-level ``base``, ``vary`` or ``zip``), which ``dnnsim sweep`` runs.
    """
    allowed = "a YAML run config: a mapping of config keys"
    data = read_yaml_mapping(path, "config", allowed)
    sweep_keys = [key for key in SWEEP_KEYS if key in data]
    if sweep_keys:
        raise UserError("config", f"{str(path)!r} is a sweep file (keys {'/'.join(sweep_keys)}); run it with "
                                  f"dnnsim sweep {path} --out results.csv", allowed)
    return data


def parse_set(pairs: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``["batch=512", "overlap=true"]`` -> ``{"batch": 512, "overlap": True}`` (values parsed as YAML)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = str(pair).partition("=")
        if not sep or not key.strip():
            raise UserError("set", f"{pair!r} is not key=value", "--set key=value, e.g. --set batch=512")
        try:
            parsed = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError:
            parsed = value
        out[key.strip().replace("-", "_")] = parsed
    return out


def load_config(path: str | Path | None, overrides: dict[str, Any] | None = None,
                sets: list[str] | tuple[str, ...] = (), ignore: tuple[str, ...] = ()) -> RunConfig:
    """Config from a YAML file (optional), then ``overrides`` (flags; None values ignored), then ``sets``;
    keys in ``ignore`` are dropped before validation (``dnnsim best`` drops ``grid``).

    Examples
    --------
    >>> load_config(None, {"batch": 512, "procs": None}).batch
    512
    """
    data: dict[str, Any] = read_yaml(path) if path else {}
    data = {str(k).replace("-", "_"): v for k, v in data.items()}
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    data.update(parse_set(sets))
    for key in ignore:
        data.pop(key, None)
    return make_config(data)


# ---------------------------------------------------------------------------------------- model checks
def validate_against_model(config: RunConfig, model: Any) -> None:
    """Check the grid and modes against the model's layers and the batch (raises :class:`UserError`).

    * a ``conv`` mode other than the default needs a model with convolutions;
    * Pc <= B (model/domain layers) and P <= B (batch layers over all P);
    * a model layer needs at least Pr output rows of W (output channels or features);
    * a domain layer needs at least Pr output image rows;
    * with a separate conv grid (Pr_c x Pc_c): the model has convolutions, all of them before its first
      fc layer; B a multiple of Pc_c; the conv layers checked as above against Pr_c.
    * with ``uneven: reject``, B a multiple of Pc and of P, and rows and image heights multiples of Pr.
    """
    pr, pc = config.grid_dims()
    conv_grid = config.conv_grid_dims()
    conv_mode, fc_mode = config.layer_modes()
    kinds = {layer.kind for layer in model.layers if layer.kind in ("conv", "fc")}
    default_conv = {"batch": "batch", "model": "model", "domain": "domain", "integrated": "model"}[config.strategy]
    if "conv" not in kinds and (config.strategy == "domain" or (config.conv or default_conv) != default_conv):
        raise UserError("conv", f"conv mode {conv_mode!r} asked for, but model {model.name!r} has no "
                                "convolution layers", "leave conv unset (and no strategy domain) for this model")
    used = {conv_mode} if "conv" in kinds else set()
    if kinds - {"conv"}:
        used.add(fc_mode)
    B, P = config.batch, config.procs
    if conv_grid is not None:
        _check_conv_grid(config, model, conv_grid)
    even = config.uneven == "reject"
    if used & {"model", "domain"}:
        if pc > B:
            raise UserError("grid", f"Pc={pc} exceeds batch={B}",
                            "Pc <= batch (one sample per grid column at least)")
        if B % pc and even:
            raise UserError("batch", f"batch={B} is not a multiple of Pc={pc} (uneven: reject)",
                            "a batch divisible by Pc, or uneven: allow")
    if "batch" in used:
        if P > B:
            raise UserError("procs", f"procs={P} exceeds batch={B} for batch-parallel layers",
                            "procs <= batch, or model/domain parallel layers (conv domain, fc model)")
        if B % P and even:
            raise UserError("batch", f"batch={B} is not a multiple of procs={P} for batch-parallel layers "
                                     "(uneven: reject)", "a batch divisible by procs, or uneven: allow")
    for layer in model.layers:
        if layer.kind not in ("conv", "fc"):
            continue
        mode = conv_mode if layer.kind == "conv" else fc_mode
        name, lpr = ("grid", pr) if conv_grid is None or layer.kind != "conv" else ("conv_grid", conv_grid[0])
        if mode == "model":
            rows = layer.out_shape[0]
            if rows < lpr:
                raise UserError(name, f"Pr={lpr} exceeds the {rows} output rows of W of layer {layer.name!r}",
                                f"Pr <= {rows} for model-parallel layers")
            if rows % pr and even:
                raise UserError("grid", f"Pr={pr} does not divide the {rows} output rows of W of layer "
                                        f"{layer.name!r} (uneven: reject)",
                                f"a Pr that divides {rows}, or uneven: allow")
        elif mode == "domain":
            if len(layer.out_shape) < 3:
                raise UserError("conv", f"layer {layer.name!r} ({layer.kind}) cannot be domain-parallel",
                                "domain applies to convolutions only")
            height = layer.out_shape[1]
            if height < lpr:
                raise UserError(name, f"Pr={lpr} exceeds the {height} image rows of layer {layer.name!r}",
                                f"Pr <= {height} for domain-parallel layers")
            if height % pr and even:
                raise UserError("grid", f"Pr={pr} does not divide the {height} image rows of layer "
                                        f"{layer.name!r} (uneven: reject)",
                                f"a Pr that divides {height}, or uneven: allow")


def _check_conv_grid(config: RunConfig, model: Any, conv_grid: tuple[int, int]) -> None:
    """The model-level checks of a separate conv grid (see :func:`validate_against_model`)."""
    pr_c, pc_c = conv_grid
    kinds = [layer.kind for layer in model.layers if layer.kind in ("conv", "fc")]
    if "conv" not in kinds:
        raise UserError("conv_grid", f"model {model.name!r} has no convolution layers",
                        "no conv_grid for this model")
    if "fc" in kinds and kinds.index("fc") < len(kinds) - 1 - kinds[::-1].index("conv"):
        raise UserError("conv_grid", f"model {model.name!r} has a fully connected layer before a convolution",
                        "a model whose convolutions all come before its fully connected layers, or no conv_grid")
    B = config.batch
    if pc_c > B:
        raise UserError("conv_grid", f"Pc={pc_c} exceeds batch={B}", "Pc <= batch (one sample per grid column at least)")
    if B % pc_c:
        raise UserError("conv_grid", f"batch={B} is not a multiple of Pc={pc_c}",
                        "a batch divisible by the conv grid's Pc (uneven splits are not modelled)")


def squarest_grid(procs: int) -> tuple[int, int]:
    """The factorization with Pr <= Pc closest to square (``integrated``'s default grid)."""
    return max((g for g in all_grids(procs) if g[0] <= g[1]), key=lambda g: g[0])


def grid_label(pr: int, pc: int) -> str:
    return f"{pr}x{pc}"


__all__ = ["CONV_MODES", "FC_MODES", "NETWORKS", "STRATEGIES", "RunConfig", "grid_label", "load_config",
           "make_config", "parse_set", "read_yaml", "squarest_grid", "validate_against_model"]

