"""Collective algorithms: phases of point-to-point transfers plus their closed-form α-β costs.

Ops and the algorithms each supports (``paper`` = the paper's costs, docs/paper-model.md; the default):

=================  =========================================================================
allgather          ring, recursive_doubling (2^k), bruck, paper
reduce_scatter     ring, recursive_halving (2^k), bruck, paper
allreduce          ring, recursive_doubling, rabenseifner, rabenseifner_far, tree, hierarchical, paper
broadcast, reduce  tree, paper
alltoall           direct, bruck, paper
halo               direct, paper
send               direct, paper (point-to-point, group (sender, receiver))
=================  =========================================================================

Use :func:`get_algorithm` to look one up, :func:`parse_collectives` for the ``--collectives`` flag and
:func:`bus_factor` for nccl-tests' bus bandwidth. Every algorithm's ``cost_s`` equals
:func:`ideal_time_s` of its ``phases`` (tests hold them to it).
"""

from sim.collectives.base import (
                                  Algorithm,
                                  Phase,
                                  bytes_received_per_rank,
                                  bytes_sent_per_rank,
                                  ceil_log2,
                                  ideal_time_s,
                                  make_phase,
)
from sim.collectives.registry import (
                                  ALGORITHM_NAMES,
                                  ALGORITHMS,
                                  OPS,
                                  algorithms_for,
                                  bus_factor,
                                  get_algorithm,
                                  parse_collectives,
)

__all__ = ["ALGORITHMS", "ALGORITHM_NAMES", "OPS", "Algorithm", "Phase", "algorithms_for", "bus_factor",
           "bytes_received_per_rank", "bytes_sent_per_rank", "ceil_log2", "get_algorithm", "ideal_time_s",
           "make_phase", "parse_collectives"]
