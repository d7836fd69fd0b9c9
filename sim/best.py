"""``dnnsim best``: every strategy variant and grid of a configuration, ranked by iteration time.

Candidates, for every factorization Pr x Pc of P (:func:`candidates`):

* ``1xP``: ``batch`` (every layer batch-parallel; any mode on a 1xP grid is the same thing);
* ``Px1``: ``model``, and for models with convolutions ``domain`` with fc ``batch`` and fc ``model``;
* ``PrxPc`` with Pr, Pc > 1: ``integrated`` with conv in (batch, model, domain) x fc in (batch, model),
  except conv = fc = batch (that is pure batch, listed once on 1xP);
* then, for every fc grid ``PrxPc`` with Pr > 1 (Px1 included) and a model with convolutions: ``integrated``
  with fc ``model`` and conv in (model, domain) on a separate conv grid ``conv_grid`` = Pr_c x Pc_c, for
  every Pr_c < Pr dividing Pr (Pr_c ascending). A conv grid equal to the fc grid is the candidate above.

``conv_grid`` in the base config is ignored, as ``grid`` is: every conv grid is searched.

``--conv``/``--fc`` given by the user restrict the candidates to those layer modes. Candidates the
config checks reject (Pc > B, B not divisible, Pr above a layer's rows, ...) are skipped. Every candidate
is timed by the analytic fast path (``analytic_iteration_s``); when the user's network is not
``analytic`` the best ``top`` of them (default 5) are re-timed on it (``iteration_s``) and ranked by that.
Ties keep the enumeration order above (grids by Pr ascending).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from sim.config import RunConfig, make_config
from sim.errors import UserError
from sim.grid import all_grids

DEFAULT_TOP_RETIMED = 5


def candidates(base: RunConfig, has_conv: bool, conv_grids: bool = True) -> list[dict[str, Any]]:
    """Strategy/grid/mode overrides of every candidate, in enumeration order (module docstring);
    ``conv_grids=False`` leaves out the candidates with a separate conv grid."""
    P = base.procs
    conv_choices = ("batch", "model", "domain") if has_conv else (None,)
    out: list[dict[str, Any]] = []

    def allowed(conv: str | None, fc: str) -> bool:
        return (base.conv is None or conv is None or conv == base.conv) and (base.fc is None or fc == base.fc)

    for pr, pc in all_grids(P):
        grid = f"{pr}x{pc}"
        if pr == 1:
            if allowed("batch" if has_conv else None, "batch"):
                out.append({"strategy": "batch", "grid": grid, "conv": None, "fc": None})
            continue
        if pc == 1:
            if allowed("model" if has_conv else None, "model"):
                out.append({"strategy": "model", "grid": grid, "conv": None, "fc": None})
            if has_conv:
                for fc in ("batch", "model"):
                    if allowed("domain", fc):
                        out.append({"strategy": "domain", "grid": grid, "conv": None, "fc": fc})
            continue
        for conv in conv_choices:
            for fc in ("batch", "model"):
                if conv in ("batch", None) and fc == "batch":
                    continue
                if allowed(conv, fc):
                    out.append({"strategy": "integrated", "grid": grid, "conv": conv, "fc": fc})
    for c in out:
        c["conv_grid"] = None
    if has_conv and conv_grids:
        for pr, pc in all_grids(P):
            for conv in ("model", "domain"):
                if pr == 1 or not allowed(conv, "model"):
                    continue
                for pr_c, pc_c in all_grids(P):
                    if pr_c < pr and pr % pr_c == 0:
                        out.append({"strategy": "integrated", "grid": f"{pr}x{pc}", "conv": conv, "fc": "model",
                                    "conv_grid": f"{pr_c}x{pc_c}"})
    return out


def rank_best(base: RunConfig, top: int | None = None, conv_grids: bool = True) -> pd.DataFrame:
    """All candidates ranked by iteration time (see the module docstring); one summary row each, with
    ``rank`` first and ``analytic_iteration_s`` next to ``iteration_s``. ``base.strategy`` and
    ``base.grid`` are ignored; ``base.conv``/``base.fc``, when set, restrict the candidates (give
    ``strategy="integrated"`` to set both freely); ``conv_grids=False`` searches one grid for all layers."""
    from sim.api import load_setup, plan_config, run_planned

    if top is not None and top < 1:
        raise UserError("top", f"{top} is not positive", "an integer >= 1")
    analytic_base = base.model_copy(update={"network": "analytic", "grid": None, "strategy": "batch",
                                            "conv": None, "fc": None, "conv_grid": None})
    setup = load_setup(analytic_base)
    has_conv = any(layer.kind == "conv" for layer in setup.model.weight_layers())
    rows: list[tuple[float, int, RunConfig, Any, pd.DataFrame]] = []
    for order, overrides in enumerate(candidates(base, has_conv, conv_grids)):
        data = base.model_dump()
        data.update(overrides)
        data["network"] = "analytic"
        try:
            cfg = make_config(data)
            plan = plan_config(cfg, setup)
        except UserError:
            continue
        # auto: the fast path, or the engine where ranks do not all run alike (engine="fast" would refuse)
        summary = run_planned(cfg, setup, plan, "auto", with_layers=False).summary
        rows.append((float(summary["iteration_s"].iloc[0]), order, cfg, plan, summary))
    if not rows:
        raise UserError("procs", f"no grid of procs={base.procs} fits batch={base.batch} and model "
                                 f"{base.model!r}", "a batch and procs that some strategy can split")
    rows.sort(key=lambda r: (r[0], r[1]))
    if base.network == "analytic":
        chosen = rows if top is None else rows[:top]
        frames = []
        for analytic_s, _, _, _, summary in chosen:
            summary = summary.copy()
            summary.insert(summary.columns.get_loc("iteration_s"), "analytic_iteration_s", analytic_s)
            frames.append(summary)
    else:
        chosen = rows[: top or DEFAULT_TOP_RETIMED]
        frames = []
        for analytic_s, _, cfg, plan, _ in chosen:
            real = cfg.model_copy(update={"network": base.network})
            summary = run_planned(real, setup, plan, "full", with_layers=False).summary.copy()
            summary.insert(summary.columns.get_loc("iteration_s"), "analytic_iteration_s", analytic_s)
            frames.append(summary)
    table = pd.concat(frames, ignore_index=True)
    order = sorted(range(len(table)), key=lambda i: (float(table["iteration_s"].iloc[i]), i))
    table = table.iloc[order].reset_index(drop=True)
    table.insert(0, "rank", range(1, len(table) + 1))
    return table
