"""The 4d screen (:mod:`sim.llm.screen`) and the simulator on one config, for the tests that
compare them (tests/test_best4d.py, tests/test_cp_comm.py)."""

from __future__ import annotations

from sim.api import load_setup, simulate
from sim.config import make_config
from sim.llm.costs import chunk_costs
from sim.llm.run import tp_symmetric
from sim.llm.screen import make_pricer, screen


def screen_vs_simulate(config: dict) -> tuple[float, float]:
    """``(screen iteration_s, simulated iteration_s)`` of ``config`` under ``network: analytic``."""
    cfg = make_config(config)
    simulated = float(simulate(cfg).summary["iteration_s"].iloc[0])  # first: it refuses layouts the model cannot run
    setup = load_setup(cfg)
    par = cfg.parallel()
    costs = chunk_costs(setup.model, par, setup.compute_model.time, cfg.word_bytes())
    sc = screen(par, costs, par.microbatches(cfg.batch), make_pricer(setup, "analytic"), cfg.word_bytes(),
                cfg.host_overhead, tp_symmetric(setup.graph, par, "analytic"), tp_overlap=cfg.tp_overlap,
                overlap=cfg.overlap, bucket_params=None if cfg.bucket_mb is None else cfg.bucket_mb * 2**20 / cfg.word_bytes())
    return sc.iteration_s, simulated
