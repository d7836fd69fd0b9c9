"""Run the validation table: predict every published measurement of a rows file and report the error.

A rows file (``validation/rows.yaml``) is a YAML mapping with a ``rows:`` list. Each row has an ``id``,
a ``kind``, a ``source`` (where the measured value was published) and either

* a ``setting`` and a ``measured: {value, unit}``: a run dnnsim can express, or
* a ``missing:`` text: a published measurement dnnsim cannot express yet, with what it lacks.

Kinds and how the prediction is made (one set of defaults for every row, nothing tuned per row):

``collective``
    ``setting`` = ``op, procs, bytes, topology`` (and optionally ``algorithm``, default ``nccl``;
    ``network``, default ``flow``), timed by :func:`sim.engine.collective.simulate_collective`;
    unit ``busbw_GB/s`` (nccl-tests' bus bandwidth, 1 GB = 1e9 bytes).
``throughput``
    ``setting`` = a :func:`sim.api.simulate` config; unit ``samples/s`` = ``batch / iteration_s``.
``scaling``
    ``setting`` = a :func:`sim.api.simulate` config with ``procs`` = P and ``batch`` = P × the per-rank
    batch; unit ``speedup`` = P × iteration_s(1 rank, the per-rank batch) / iteration_s(P ranks), the
    "strong scaling" column of NVIDIA's tables (throughput at P over throughput at 1).
``training``
    ``setting`` = a transformer training run on a TP x CP x PP x DP grid (keys :data:`TRAINING_KEYS`;
    ``model`` a zoo transformer or a model YAML path, relative to the rows file); compared quantity
    ``iteration_s``, dnnsim's ``iteration_s``. The published value is copied as printed, in one of
    :data:`TRAINING_UNITS`, and converted to seconds per iteration by :func:`published_iteration_s`:

    * ``iteration_s``: as printed (Korthikanti et al. 2022, Table 5);
    * ``tflops_per_gpu`` with ``flops: narayanan2021``: ``F / (X * 1e12 * procs)`` with F of
      :func:`narayanan2021_flops` (Narayanan et al. 2021, eq. 3);
    * ``tflops_per_gpu`` with ``flops: megatron2024``: F of :func:`megatron2024_flops` (Megatron-LM's
      ``num_floating_point_operations``, the count behind its 2024 H100 table);
    * ``mfu_pct`` with ``flops: palm``: ``batch * seq_len * (6N + 12 L H Q T) / (procs * peak * MFU)``
      (:func:`palm_flops_per_token`, the PaLM definition; ``peak`` the dense peak of the row's
      ``compute`` device at its ``precision``, as dnnsim's own ``mfu`` uses).

``error = predicted / measured - 1``. :func:`summarize` gives the median and max of ``|error|``.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from sim.errors import UserError

KINDS = ("collective", "throughput", "scaling", "training")
#: the unit each kind compares in (a training row's published value is converted to it)
UNITS = {"collective": "busbw_GB/s", "throughput": "samples/s", "scaling": "speedup", "training": "iteration_s"}
#: units a training row's published value may be copied in, and the FLOP counts a rate needs
TRAINING_UNITS = {"iteration_s": (), "tflops_per_gpu": ("narayanan2021", "megatron2024"), "mfu_pct": ("palm",)}
#: a training row's setting keys (the run config keys of transformer training on a TP x CP x PP x DP grid)
TRAINING_KEYS = {"model", "procs", "batch", "seq_len", "tp", "cp", "pp", "dp", "sp", "microbatch", "schedule",
                 "virtual_stages", "pp_split", "cp_comm", "zero", "recompute", "precision", "compute", "topology", "network",
                 "collectives", "overlap", "tp_overlap"}
ROW_KEYS = {"id", "kind", "setting", "measured", "missing", "source", "notes"}
COLLECTIVE_KEYS = {"op", "procs", "bytes", "topology", "algorithm", "network"}
#: the defaults every collective row shares (the ``collective`` command's network; the nccl model)
COLLECTIVE_DEFAULTS = {"algorithm": "nccl", "network": "flow"}
#: where ``dnnsim validate`` reads its rows by default
DEFAULT_ROWS = Path(__file__).resolve().parent.parent / "validation" / "rows.yaml"
_ALLOWED_FILE = "a YAML mapping with a 'rows:' list (validation/README.md)"


def _bad(row_id: str, problem: str, allowed: str) -> UserError:
    return UserError(f"rows[{row_id}]", problem, allowed)


def check_row(row: Any, index: int) -> dict[str, Any]:
    """One row, checked: its keys, kind, source, and either setting + measured or missing."""
    if not isinstance(row, dict):
        raise _bad(str(index), f"row {index} is not a mapping", "id, kind, source, setting + measured or missing")
    row_id = str(row.get("id", index))
    unknown = set(row) - ROW_KEYS
    if unknown:
        raise _bad(row_id, f"unknown keys {sorted(unknown)}", ", ".join(sorted(ROW_KEYS)))
    for key in ("id", "kind", "source"):
        if not isinstance(row.get(key), str) or not row[key].strip():
            raise _bad(row_id, f"'{key}' is missing or not a non-empty string", "every row has id, kind and source")
    if row["kind"] not in KINDS:
        raise _bad(row_id, f"unknown kind {row['kind']!r}", ", ".join(KINDS))
    if "missing" in row:
        if "setting" in row or "measured" in row:
            raise _bad(row_id, "has both 'missing' and a setting/measured", "either missing or setting + measured")
        if not isinstance(row["missing"], str) or not row["missing"].strip():
            raise _bad(row_id, "'missing' is empty", "what dnnsim lacks to express the row")
        return row
    setting, measured = row.get("setting"), row.get("measured")
    if not isinstance(setting, dict) or not setting:
        raise _bad(row_id, "'setting' is missing or not a mapping", "a dnnsim collective or simulate config")
    measured_keys = {"value", "unit", "flops"} if row["kind"] == "training" else {"value", "unit"}
    if not isinstance(measured, dict) or set(measured) - measured_keys:
        raise _bad(row_id, "'measured' is not a mapping of value and unit", "measured: {value: N, unit: U}"
                   + (" (and flops: COUNT for a rate)" if row["kind"] == "training" else ""))
    value = measured.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise _bad(row_id, f"measured value {value!r} is not a positive number", "a number > 0")
    if row["kind"] == "training":
        _check_training(row_id, setting, measured)
        return row
    if measured.get("unit") != UNITS[row["kind"]]:
        raise _bad(row_id, f"unit {measured.get('unit')!r} does not fit kind {row['kind']!r}",
                   f"unit {UNITS[row['kind']]}")
    if row["kind"] == "collective":
        if set(setting) - COLLECTIVE_KEYS or not {"op", "procs", "bytes", "topology"} <= set(setting):
            raise _bad(row_id, f"collective setting keys {sorted(setting)}",
                       "op, procs, bytes, topology (algorithm, network optional)")
    elif "procs" not in setting or "batch" not in setting:
        raise _bad(row_id, "setting lacks procs or batch", "a simulate config with model, batch, procs, ...")
    return row


def _check_training(row_id: str, setting: dict[str, Any], measured: dict[str, Any]) -> None:
    """A training row's setting (keys, a grid that multiplies to procs) and its published unit and count."""
    unit, flops = measured.get("unit"), measured.get("flops")
    if unit not in TRAINING_UNITS:
        raise _bad(row_id, f"unit {unit!r} does not fit kind 'training'", ", ".join(TRAINING_UNITS))
    counts = TRAINING_UNITS[unit]
    if counts and flops not in counts:
        raise _bad(row_id, f"a value in {unit} needs the FLOP count it was computed with, not {flops!r}",
                   "measured.flops: " + " or ".join(counts))
    if not counts and flops is not None:
        raise _bad(row_id, f"measured.flops {flops!r} given for a value in {unit}", "no flops for " + unit)
    unknown = set(setting) - TRAINING_KEYS
    if unknown:
        raise _bad(row_id, f"training setting keys {sorted(unknown)} unknown", ", ".join(sorted(TRAINING_KEYS)))
    dims = {"procs": None, "batch": None, "seq_len": None, "tp": None, "pp": None, "dp": None, "cp": 1}
    for key, default in dims.items():
        value = setting.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise _bad(row_id, f"setting.{key} is {value!r}, not a positive integer",
                       "model, procs, batch, seq_len, tp, pp, dp (cp) as integers >= 1")
        dims[key] = value
    if not isinstance(setting.get("model"), str):
        raise _bad(row_id, "setting.model is missing", "a zoo transformer or a model YAML path")
    grid = dims["tp"] * dims["cp"] * dims["pp"] * dims["dp"]
    if grid != dims["procs"]:
        raise _bad(row_id, f"tp*cp*pp*dp = {grid} is not procs = {dims['procs']}", "tp * cp * pp * dp == procs")
    if dims["batch"] % dims["dp"]:
        raise _bad(row_id, f"batch {dims['batch']} is not a multiple of dp {dims['dp']}", "batch = dp x the "
                   "sequences per data-parallel rank")


def load_rows(path: str | Path) -> list[dict[str, Any]]:
    """The checked rows of a rows file (unique ids); a malformed file raises one :class:`UserError`."""
    from sim.yamlfile import read_yaml_mapping

    data = read_yaml_mapping(path, "rows", _ALLOWED_FILE)
    rows = data.get("rows")
    if set(data) != {"rows"} or not isinstance(rows, list) or not rows:
        raise UserError("rows", f"{str(path)!r} has no non-empty 'rows:' list (keys {sorted(data)})", _ALLOWED_FILE)
    checked = [check_row(row, i) for i, row in enumerate(rows)]
    seen: set[str] = set()
    for row in checked:
        if row["id"] in seen:
            raise _bad(row["id"], "duplicate id", "every id once")
        seen.add(row["id"])
    return [_resolve_model(row, Path(path).parent) for row in checked]


def _resolve_model(row: dict[str, Any], base: Path) -> dict[str, Any]:
    """A training row whose model is a relative YAML path gets ``_model`` = that path under the rows
    file's folder (the setting keeps the text as written); a file that is not there is an error."""
    model = row.get("setting", {}).get("model") if row["kind"] == "training" else None
    if not isinstance(model, str) or not model.endswith((".yaml", ".yml")):
        return row
    path = Path(model) if Path(model).is_absolute() else base / model
    if not path.is_file():
        raise _bad(row["id"], f"model file {model!r} is not in {str(base)!r}", "a model YAML path relative to "
                   "the rows file")
    return {**row, "_model": str(path)}


# --- the published values of training rows, as seconds per iteration ---------------------------------


def narayanan2021_flops(batch: int, seq_len: int, layers: int, hidden: int, vocab: int, recompute: bool) -> float:
    """FLOPs of one iteration as Narayanan et al. 2021 count them (arXiv 2104.04473, Sec. 5.1, eq. 3).

    ``96 B s l h^2 (1 + s/(6h) + V/(16 l h))`` with full activation recomputation (the forward pass of
    every transformer layer runs twice, so 4x the forward matmul FLOPs of a layer, 3x those of the
    logit layer); without it ``72 B s l h^2 (1 + s/(6h) + V/(12 l h))`` (3x everything), the count of
    model FLOPs that Korthikanti et al. 2022 use for MFU. GPT blocks: an MLP of 4h, multi-head attention.
    """
    b, s, lay, h, v = float(batch), float(seq_len), float(layers), float(hidden), float(vocab)
    if recompute:
        return 96.0 * b * s * lay * h * h * (1.0 + s / (6.0 * h) + v / (16.0 * lay * h))
    return 72.0 * b * s * lay * h * h * (1.0 + s / (6.0 * h) + v / (12.0 * lay * h))


def megatron2024_flops(batch: int, seq_len: int, layers: int, hidden: int, vocab: int, heads: int,
                       kv_heads: int, head_dim: int, ffn: int, swiglu: bool) -> float:
    """FLOPs of one iteration as Megatron-LM's ``num_floating_point_operations`` counts them
    (megatron/training/training.py at commit f2e5db402c, the commit of the README's 2024 H100 table)::

        12 B s l h^2 ((1 + g/H + s/h) (H d / h) + (f/h) (3/2 if swiglu else 1) + V / (2 l h))

    ``g`` the key/value heads, ``d`` the head dimension, ``f`` the MLP width; no recomputation counted.
    For GPT blocks (g = H, H d = h, f = 4h, no SwiGLU) it equals the 72-form of :func:`narayanan2021_flops`.
    """
    b, s, lay, h = float(batch), float(seq_len), float(layers), float(hidden)
    attention = (1.0 + kv_heads / heads + s / h) * (heads * head_dim / h)
    mlp = (ffn / h) * (1.5 if swiglu else 1.0)
    return 12.0 * b * s * lay * h * h * (attention + mlp + vocab / (2.0 * lay * h))


def palm_flops_per_token(params: int, layers: int, heads: int, head_dim: int, seq_len: int) -> float:
    """Training FLOPs per token as PaLM defines them for MFU (Chowdhery et al. 2022, App. B):
    ``6 N + 12 L H Q T`` (the count of :func:`workloads.transformer.model_flops_per_token`)."""
    return 6.0 * params + 12.0 * layers * heads * head_dim * seq_len


def transformer_config(model: str) -> Any:
    """The :class:`~workloads.transformer.TransformerConfig` of a zoo transformer or a model YAML file."""
    from dataclasses import replace

    from workloads.loader import load_model
    from workloads.transformer import TransformerConfig
    from workloads.zoo import TRANSFORMERS

    if model in TRANSFORMERS:
        return TRANSFORMERS[model]
    from sim.yamlfile import read_yaml_mapping

    load_model(model)  # the file as dnnsim reads it: every mistake one UserError
    data = read_yaml_mapping(model, "model", "a model YAML file with a transformer: mapping")
    spec = data.get("transformer")
    if not isinstance(spec, dict):
        raise UserError("model", f"{model!r} has no transformer: mapping", "a transformer model file "
                        "(docs/transformers.md)")
    values = {k: v for k, v in spec.items() if k != "base"}
    name = str(data.get("name", Path(model).stem))
    if "base" in spec:
        return replace(TRANSFORMERS[spec["base"]], name=name, **values)
    return TransformerConfig(name=name, **values)


def peak_flops(row_id: str, compute: str, precision: str) -> float:
    """The dense peak FLOP/s of a ``roofline:DEVICE`` compute spec at ``precision`` (the device file's)."""
    from workloads.device_specs import load_device
    from workloads.precision import get_precision

    if not compute.startswith("roofline:"):
        raise _bad(row_id, f"compute {compute!r} has no device peak for an MFU", "compute: roofline:DEVICE")
    return load_device(compute.split(":", 1)[1]).peak(get_precision(precision).peak)[0]


def published_iteration_s(row: dict[str, Any]) -> float:
    """A training row's published value as seconds per iteration (module docstring: the conversions)."""
    setting, measured = row["setting"], row["measured"]
    value, unit = float(measured["value"]), measured["unit"]
    if unit == "iteration_s":
        return value
    cfg = transformer_config(row.get("_model", setting["model"]))
    batch, seq, procs = int(setting["batch"]), int(setting["seq_len"]), int(setting["procs"])
    if unit == "mfu_pct":
        from workloads.transformer import build_transformer

        params = build_transformer(cfg).params
        per_token = palm_flops_per_token(params, cfg.layers, cfg.heads, cfg.d_head, seq)
        peak = peak_flops(row["id"], str(setting.get("compute", "")), str(setting.get("precision", "fp32")))
        return batch * seq * per_token / (procs * peak * value / 100.0)
    if measured["flops"] == "narayanan2021":
        if cfg.ffn != 4 * cfg.hidden or cfg.n_kv_heads != cfg.heads or cfg.heads * cfg.d_head != cfg.hidden:
            raise _bad(row["id"], f"model {cfg.name!r} is not a GPT block (MLP 4h, multi-head attention)",
                       "flops: narayanan2021 counts GPT blocks; megatron2024 counts others")
        flops = narayanan2021_flops(batch, seq, cfg.layers, cfg.hidden, cfg.vocab,
                                    recompute=setting.get("recompute") == "full")
    else:
        flops = megatron2024_flops(batch, seq, cfg.layers, cfg.hidden, cfg.vocab, cfg.heads, cfg.n_kv_heads,
                                   cfg.d_head, cfg.ffn, swiglu=cfg.mlp == "swiglu")
    return flops / (value * 1e12 * procs)


def select(rows: list[dict[str, Any]], only: str | None) -> list[dict[str, Any]]:
    """The rows whose id is in the comma list ``only`` (all rows if None); an unknown id is an error."""
    if only is None:
        return rows
    wanted = [part.strip() for part in only.split(",") if part.strip()]
    ids = [row["id"] for row in rows]
    for w in wanted:
        if w not in ids:
            raise UserError("only", f"unknown row id {w!r}", "ids of the rows file (dnnsim validate lists them)")
    return [row for row in rows if row["id"] in wanted]


def _iteration_s(config: dict[str, Any]) -> float:
    from sim.api import simulate

    return float(simulate(config).summary["iteration_s"].iloc[0])


def _training_iteration_s(row: dict[str, Any]) -> float:
    """dnnsim's iteration time of a training row (its model path resolved)."""
    return _iteration_s({**row["setting"], "model": row.get("_model", row["setting"]["model"])})


def predict(row: dict[str, Any]) -> float:
    """dnnsim's value for an expressible row, in the row's unit (:data:`UNITS`)."""
    setting = row["setting"]
    if row["kind"] == "training":
        return _training_iteration_s(row)
    if row["kind"] == "collective":
        from sim.cli.collective_cmd import parse_sizes
        from sim.engine.collective import simulate_collective

        s = {**COLLECTIVE_DEFAULTS, **setting}
        (nbytes,) = parse_sizes(str(s["bytes"]))
        out = simulate_collective(s["op"], s["algorithm"], int(s["procs"]), nbytes, s["topology"], s["network"])
        return float(out["busbw_Bps"]) / 1e9
    if row["kind"] == "throughput":
        return float(setting["batch"]) / _iteration_s(dict(setting))
    procs = int(setting["procs"])
    if int(setting["batch"]) % procs:
        raise _bad(row["id"], f"batch {setting['batch']} is not a multiple of procs {procs}",
                   "batch = procs x the per-rank batch")
    one = {k: v for k, v in setting.items() if k not in ("topology", "collectives", "grid")}
    one.update(procs=1, batch=int(setting["batch"]) // procs)
    return procs * _iteration_s(one) / _iteration_s(dict(setting))


def _setting_text(row: dict[str, Any]) -> str:
    if "missing" in row:
        return "missing: " + " ".join(row["missing"].split())
    return " ".join(f"{k}={v}" for k, v in row["setting"].items())


def run_row(row: dict[str, Any]) -> dict[str, Any]:
    """The result of one row: id, kind, setting, unit, measured, predicted, error, status.

    ``status`` is ``run`` or ``missing`` (no numbers). A training row also carries ``published`` (the value
    and unit as printed); its ``measured`` is that value in seconds per iteration.
    """
    result: dict[str, Any] = {"id": row["id"], "kind": row["kind"], "setting": _setting_text(row),
                              "unit": UNITS[row["kind"]], "measured": None, "predicted": None,
                              "error": None, "status": "missing"}
    if "missing" not in row:
        if row["kind"] == "training":
            measured = published_iteration_s(row)
            result["published"] = f"{row['measured']['value']} {row['measured']['unit']}"
        else:
            measured = float(row["measured"]["value"])
        predicted = predict(row)
        result.update(measured=measured, status="run", predicted=predicted, error=predicted / measured - 1)
    return result


def _row_point(config: dict[str, Any]) -> dict[str, Any]:
    """A worker's evaluation of one row (the point's config holds it), nested so that the sweep's row
    keys (``status``, ``error``) do not overwrite the result's; a :class:`UserError` comes back whole."""
    try:
        return {"result": run_row(config["row"])}
    except UserError as exc:
        return {"result": None, "user_error": (exc.field, exc.problem, exc.allowed)}


def run_rows(rows: list[dict[str, Any]], workers: int = 1, progress: bool = False) -> list[dict[str, Any]]:
    """:func:`run_row` of every row, in the rows' order.

    ``workers`` > 1 runs the rows on a local process pool (:class:`sim.sweep.local.LocalBackend`: an
    interrupt kills the workers at once) and gives the same results and the same error: that of the
    first failing row in the rows' order (the other rows still run). ``progress``: a bar on stderr when
    it is a terminal.
    """
    from sim.sweep.progress import SweepProgress

    with SweepProgress(len(rows), enabled=progress, label="validate") as bar:
        if workers <= 1:
            results = []
            for row in rows:
                results.append(run_row(row))
                bar.advance(True)
            return results
        from sim.sweep.local import LocalBackend
        from sim.sweep.spec import Point

        done: dict[str, dict[str, Any]] = {}
        failed: dict[str, Exception] = {}
        with LocalBackend(workers) as pool:
            for chunk in pool.results(_row_point, [[Point(row["id"], {"row": row})] for row in rows]):
                for out in chunk:
                    if out["status"] != "ok":  # not a user's mistake: a defect, or a worker that died
                        failed[out["point_id"]] = RuntimeError(f"validation row {out['point_id']}: {out['error']}")
                    elif out.get("user_error"):
                        failed[out["point_id"]] = UserError(*out["user_error"])
                    else:
                        done[out["point_id"]] = out["result"]
                    bar.advance(out["point_id"] in done)
    for row in rows:
        if row["id"] in failed:
            raise failed[row["id"]]
    return [done[row["id"]] for row in rows]


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Rows run and missing, median and max ``|error|`` and the id of the worst row."""
    errors = [(abs(r["error"]), r["id"]) for r in results if r["error"] is not None]
    summary: dict[str, Any] = {"rows": len(errors), "missing": len(results) - len(errors),
                               "median_abs_error": None, "max_abs_error": None, "worst": None}
    if errors:
        summary["median_abs_error"] = statistics.median(e for e, _ in errors)
        summary["max_abs_error"], summary["worst"] = max(errors)
    return summary
