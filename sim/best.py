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
config checks reject (Pc > B, B not divisible, Pr above a layer's rows, an algorithm refusing a group
size, ...) are skipped.

Ranking (:func:`rank_best`): every candidate is first *screened* by the fast path
(``screen_iteration_s``). Under ``network=analytic`` the screen is the analytic closed form and is the
result (bit for bit what ``dnnsim run`` gives). Under any other network the screen prices each
collective on its groups' actual routes and link classes (:class:`sim.screen.RoutedScreen`); then

* with at most ``exact_up_to`` candidates (default :data:`EXACT_UP_TO`) every candidate is re-timed on
  the requested network, so the first row is the best of an exhaustive ``dnnsim run`` over them all;
* above that, the ``top`` best of the screen (default :data:`DEFAULT_TOP_RETIMED`) are re-timed (the
  screen ignores contention between groups, so a candidate it ranks lower may be missed).

The pure-batch candidate (``1xP``) is always timed and listed, beyond ``top`` too, and every row gets
``speedup_vs_batch`` = pure batch's ``iteration_s`` / the row's (NaN where pure batch does not fit;
timed apart, and not listed, when ``--conv``/``--fc`` exclude it). Ties keep the screen's order, whose
own ties keep the enumeration order above (grids by Pr ascending).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from sim.config import RunConfig, make_config, refuse_4d_only
from sim.errors import UserError
from sim.grid import all_grids

#: candidates re-timed above :data:`EXACT_UP_TO` candidates on a non-analytic network, unless ``top`` says
DEFAULT_TOP_RETIMED = 5
#: at most this many candidates: every one is re-timed on the requested network (exact)
EXACT_UP_TO = 32
PURE_BATCH = {"strategy": "batch", "conv": None, "fc": None}


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


@dataclass
class _Candidate:
    """A planned candidate and its screen time; ``order`` is its place in the enumeration."""

    order: int
    cfg: RunConfig
    plan: Any
    screen_s: float
    summary: pd.DataFrame | None  #: the analytic result (network analytic), else filled when re-timed
    is_batch: bool
    analytic_s: float = math.nan  #: the closed-form (``analytic``) iteration time


def _planned(base: RunConfig, overrides: dict[str, Any], setup: Any) -> tuple[RunConfig, Any] | None:
    """The candidate's config (``network`` analytic) and plan, or None where a check rejects it."""
    from sim.api import plan_config
    from sim.fastpath import check_algorithms

    data = base.model_dump()
    data.update(overrides)
    data["network"] = "analytic"
    try:
        cfg = make_config(data)
        plan = plan_config(cfg, setup)
        check_algorithms(plan.steps, plan.grid.pr, plan.grid.pc, plan.grid)
    except UserError:
        return None
    return cfg, plan


def _timed(cand: _Candidate, network: str, setup: Any) -> pd.DataFrame:
    """The candidate's summary on ``network`` (the analytic one is already there)."""
    from sim.api import run_planned

    if cand.summary is not None:
        return cand.summary
    real = cand.cfg.model_copy(update={"network": network})
    return run_planned(real, setup, cand.plan, "full", with_layers=False).summary


def rank_best(base: RunConfig, top: int | None = None, exact_up_to: int = EXACT_UP_TO,
              conv_grids: bool = True, show_unfit: bool = False) -> pd.DataFrame:
    """All candidates ranked by iteration time (see the module docstring); one summary row each, with
    ``rank`` first, ``screen_iteration_s`` before ``iteration_s`` and ``speedup_vs_batch`` after it.
    ``base.strategy`` and ``base.grid`` are ignored; ``base.conv``/``base.fc``, when set, restrict the
    candidates (give ``strategy="integrated"`` to set both freely). ``top`` limits the rows (the
    pure-batch row is kept beyond it) and, above ``exact_up_to`` candidates on a non-analytic network,
    is how many of the screen's best are re-timed. ``conv_grids=False`` searches one grid for all layers.

    A transformer model is searched on the TP x CP x PP x DP grid instead (:func:`sim.llm.search.rank_best_4d`:
    the dimensions ``base`` sets are fixed, the others searched; ``show_unfit`` lists the layouts that do
    not fit the device's memory)."""
    from sim.api import load_setup, run_planned
    from sim.fastpath import run_fast
    from sim.network import make_network
    from sim.screen import RoutedScreen

    if top is not None and top < 1:
        raise UserError("top", f"{top} is not positive", "an integer >= 1")
    if exact_up_to < 0:
        raise UserError("exact_up_to", f"{exact_up_to} is negative", "an integer >= 0")
    analytic_base = base.model_copy(update={"network": "analytic", "grid": None, "strategy": "batch",
                                            "conv": None, "fc": None, "conv_grid": None})
    setup = load_setup(analytic_base)
    if setup.model.transformer is not None:
        from sim.llm.search import rank_best_4d

        return rank_best_4d(base, setup, top, exact_up_to, show_unfit, DEFAULT_TOP_RETIMED)
    refuse_4d_only(base)
    if base.is_4d():
        raise UserError("model", f"{setup.model.name!r} is not a transformer, so it has no tp/cp/pp/dp layout to "
                                 "search", "a transformer model, or no tp, cp, pp, dp")
    has_conv = any(layer.kind == "conv" for layer in setup.model.weight_layers())
    routed = base.network != "analytic"
    screen = RoutedScreen(make_network("flow", setup.graph, ecmp=base.ecmp)) if routed else None

    def screened(order: int, overrides: dict[str, Any]) -> _Candidate | None:
        planned = _planned(base, overrides, setup)
        if planned is None:
            return None
        cfg, plan = planned
        if screen is None:  # auto: the fast path, or the engine where ranks do not all run alike
            summary = run_planned(cfg, setup, plan, "auto", with_layers=False).summary
            analytic_s = float(summary["iteration_s"].iloc[0])
            return _Candidate(order, cfg, plan, analytic_s, summary, overrides["strategy"] == "batch", analytic_s)
        screen_s = run_fast(plan.steps, plan.grid, setup.analytic, screen.collective_s).makespan_s
        analytic_s = run_fast(plan.steps, plan.grid, setup.analytic).makespan_s
        return _Candidate(order, cfg, plan, screen_s, None, overrides["strategy"] == "batch", analytic_s)

    cands = [c for order, over in enumerate(candidates(base, has_conv, conv_grids)) if (c := screened(order, over))]
    if not cands:
        raise UserError("procs", f"no grid of procs={base.procs} fits batch={base.batch} and model "
                                 f"{base.model!r}", "a batch and procs that some strategy can split")
    cands.sort(key=lambda c: (c.screen_s, c.order))
    if not routed or len(cands) <= exact_up_to:
        chosen = cands
    else:
        chosen = cands[: top or DEFAULT_TOP_RETIMED]
        chosen += [c for c in cands[len(chosen):] if c.is_batch]
    frames = []
    for cand in chosen:
        summary = _timed(cand, base.network, setup).copy()
        summary.insert(summary.columns.get_loc("iteration_s"), "analytic_iteration_s", cand.analytic_s)
        summary.insert(summary.columns.get_loc("iteration_s"), "screen_iteration_s", cand.screen_s)
        frames.append(summary)
    batch = next((c for c in chosen if c.is_batch), None)
    if batch is None:  # --conv/--fc exclude pure batch: time it apart, as the reference only
        batch = screened(-1, {**PURE_BATCH, "grid": f"1x{base.procs}"})
    batch_s = float(_timed(batch, base.network, setup)["iteration_s"].iloc[0]) if batch else math.nan
    table = pd.concat(frames, ignore_index=True)
    table.insert(table.columns.get_loc("iteration_s") + 1, "speedup_vs_batch", batch_s / table["iteration_s"])
    order = sorted(range(len(table)), key=lambda i: (float(table["iteration_s"].iloc[i]), i))
    table = table.iloc[order].reset_index(drop=True)
    table.insert(0, "rank", range(1, len(table) + 1))
    if top is not None:
        keep = (table["rank"] <= top) | (table["strategy"] == "batch")
        table = table[keep].reset_index(drop=True)
    return table
