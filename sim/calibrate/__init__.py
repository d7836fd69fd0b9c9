"""Calibration from real measurements: read nccl-tests output (:mod:`sim.calibrate.nccltests`), fit the
per-call latency and bus bandwidth of each link class (:mod:`sim.calibrate.fit`) and write a topology
YAML that ``--topology`` takes (:mod:`sim.calibrate.topofile`)."""
