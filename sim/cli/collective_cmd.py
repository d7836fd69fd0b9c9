"""``dnnsim collective``: time one collective on a topology, like nccl-tests (one row per size).

Fields: ``op, algorithm, procs, bytes, topology, network, time_s, algbw_Bps, busbw_Bps, events, wall_s``
(algbw = bytes / time_s; busbw = algbw × the op's bus factor for the group size, nccl-tests' definition).
``--bytes`` takes one size (``1MiB``), a comma list (``1KiB,1MiB``) or a range ``START:STOP:xFACTOR``
(multiplicative, e.g. ``1KiB:1GiB:x4``) or ``START:STOP:+STEP`` (additive, e.g. ``1MiB:4MiB:+1MiB``).
With ``--grid PrxPc`` the collective runs at once in every model group (``--along pr``, default) or batch
group (``--along pc``), and ``time_s`` is the time until the last group finishes.

Example::

    $ dnnsim collective --op allreduce --algorithm ring --procs 8 --bytes 64MiB

``--op send`` times one point-to-point message from rank 0 to rank procs-1 (with ``--grid``, from the first
to the last rank of each group): ``--procs 2`` on one link, ``--procs 16`` on ``dgx-a100`` across nodes.
"""

from __future__ import annotations

import click

from sim.cli.output import emit, format_option, links_option, print_links
from sim.errors import UserError

FIELDS = ["op", "algorithm", "procs", "bytes", "topology", "network", "time_s", "algbw_Bps", "busbw_Bps",
          "events", "wall_s"]
#: appended with ``--algorithm nccl``: the algorithm/protocol NCCL's tuning picked for the size
NCCL_FIELDS = ["nccl_choice"]

#: bytes of the element type the table's ``count`` column counts (fp32, nccl-tests' default ``float``)
WORD_BYTES = 4

#: the most sizes one ``--bytes`` range may expand to
MAX_SIZES = 4096

_ALLOWED = "a size (64MiB), a list (1KiB,1MiB) or a range START:STOP:xFACTOR or START:STOP:+STEP"


def parse_sizes(text: str) -> list[float]:
    """Sizes in bytes from ``SIZE``, ``SIZE,SIZE,...`` or ``START:STOP:xFACTOR`` / ``START:STOP:+STEP``.

    Examples
    --------
    >>> parse_sizes("1KiB:16KiB:x4")
    [1024.0, 4096.0, 16384.0]
    >>> parse_sizes("1MB:3MB:+1MB")
    [1000000.0, 2000000.0, 3000000.0]
    >>> parse_sizes("8,1KiB")
    [8.0, 1024.0]
    """
    from sim.units import parse_bytes

    text = str(text).strip()
    if ":" not in text:
        return [parse_bytes(part, "bytes") for part in text.split(",")]
    parts = text.split(":")
    how = parts[2].strip() if len(parts) == 3 else ""
    if not how or how[0] not in "x+":
        raise UserError("bytes", f"cannot parse range {text!r}", _ALLOWED)
    lo, hi = parse_bytes(parts[0], "bytes"), parse_bytes(parts[1], "bytes")
    if hi < lo:
        raise UserError("bytes", f"range {text!r} ends below its start", _ALLOWED)
    limit = hi * (1 + 1e-12)
    sizes: list[float] = []
    if how[0] == "x":
        try:
            factor = float(how[1:])
        except ValueError:
            raise UserError("bytes", f"bad factor {how!r} in {text!r}", _ALLOWED) from None
        if not factor > 1 or factor == float("inf"):
            raise UserError("bytes", f"factor {how!r} is not > 1", _ALLOWED)
        while lo * factor ** len(sizes) <= limit and len(sizes) <= MAX_SIZES:
            sizes.append(lo * factor ** len(sizes))
    else:
        step = parse_bytes(how[1:], "bytes")
        while lo + len(sizes) * step <= limit and len(sizes) <= MAX_SIZES:
            sizes.append(lo + len(sizes) * step)
    if len(sizes) > MAX_SIZES:
        raise UserError("bytes", f"range {text!r} has more than {MAX_SIZES} sizes", "a coarser step")
    return sizes


@click.command("collective")
@click.option("--op", required=True,
              help="allgather, reduce_scatter, allreduce, broadcast, reduce, alltoall, halo or send "
                   "(point-to-point, rank 0 to rank procs-1; with --grid, first to last rank of each group).")
@click.option("--algorithm", default="paper", show_default=True,
              help="ring, recursive_doubling, recursive_halving, rabenseifner, rabenseifner_far, bruck, tree, "
                   "hierarchical, direct, nccl or paper (each op supports some).")
@click.option("--procs", type=int, required=True, help="Ranks (rank r on host r).")
@click.option("--bytes", "nbytes", required=True,
              help="Size of the full result vector per rank (halo: bytes to each neighbour, send: the message): 64MiB, "
                   "a list 1KiB,1MiB, or a range 1KiB:1GiB:x4 or 1MiB:4MiB:+1MiB; one row per size.")
@click.option("--topology", default="ideal:latency=2us,bandwidth=6GiB/s", show_default=True,
              help="Topology spec, preset or file.")
@click.option("--network", default="flow", show_default=True, help="analytic | flow | step.")
@click.option("--grid", default=None, help="PrxPc: run the collective at once in every group of this grid.")
@click.option("--along", default=None,
              help="With --grid: pr = the model groups (grid columns of Pr ranks, default), pc = the batch groups.")
@click.option("--placement", default="row-major", show_default=True,
              help="With --grid: row-major (model-contiguous) or col-major (batch-contiguous).")
@click.option("--ecmp/--no-ecmp", default=False, show_default=True, help="Multipath routing where supported.")
@links_option
@format_option
def collective(op: str, algorithm: str, procs: int, nbytes: str, topology: str, network: str,
               grid: str | None, along: str | None, placement: str, ecmp: bool, links_top: int | None,
               fmt: str) -> None:
    """Time one collective on a simulated topology (nccl-tests style fields, one row per size)."""
    from sim.engine.collective import simulate_collective
    from sim.network import make_network
    from topologies import build_topology

    if procs < 1:
        raise UserError("procs", f"{procs} is not a positive integer", "procs >= 1")
    sizes = parse_sizes(nbytes)
    graph = build_topology(topology, procs)
    model = make_network(network, graph, ecmp=ecmp)
    if links_top is not None and fmt != "table":
        print_links(None, fmt)
    rows = []
    row: dict = {}
    meters = []
    for size in sizes:
        meter = None
        if links_top is not None:  # the analytic model refuses it with one line
            from sim.network.linkmeter import LinkMeter

            meter = LinkMeter(model.router)
        row = simulate_collective(op, algorithm, procs, size, topology, network, grid=grid, along=along,
                                  placement=placement, ecmp=ecmp, model=model, meter=meter)
        rows.append({k: row[k] for k in FIELDS + NCCL_FIELDS if k in row})
        meters.append((size, row["time_s"], meter))
    if fmt == "table":
        click.echo(nccl_table(rows, group_size=int(row["group_size"]), groups=int(row["groups"])))
        for size, time_s, meter in meters:
            if meter is not None:
                print_links(meter.table(time_s, links_top), fmt, f"busiest links at {int(size)} B")
    else:
        emit(rows, fmt, single=len(rows) == 1)


def _nccl_count(op: str, nbytes: float, p: int) -> int:
    """nccl-tests' ``count`` column: elements of the per-rank buffer the call is given (all-gather: the send
    buffer, reduce-scatter: the receive buffer, all-to-all: one peer's block; others: the whole vector), as
    ``*GetCollByteCount``'s ``paramcount`` in nccl-tests' src/all_gather.cu, reduce_scatter.cu, alltoall.cu."""
    per_rank = op in ("allgather", "reduce_scatter", "alltoall")
    return int(nbytes // (WORD_BYTES * (p if per_rank else 1)))


def _nccl_time(us: float) -> str:
    # nccl-tests' common.cu: %7.0f from 10 ms, %7.1f from 100 us, else %7.2f
    return f"{us:7.0f}" if us >= 1e4 else f"{us:7.1f}" if us >= 100 else f"{us:7.2f}"


def _choice_runs(rows: list[dict]) -> list[str]:
    """Consecutive sizes with the same ``nccl_choice`` as one run: ``tree/LL128 1024-33554432 B``."""
    runs: list[list] = []
    for r in rows:
        if runs and runs[-1][0] == r["nccl_choice"]:
            runs[-1][2] = int(r["bytes"])
        else:
            runs.append([r["nccl_choice"], int(r["bytes"]), int(r["bytes"])])
    return [f"{c} {lo} B" if lo == hi else f"{c} {lo}-{hi} B" for c, lo, hi in runs]


def nccl_table(rows: list[dict], group_size: int, groups: int) -> str:
    """Rows as nccl-tests prints them (``#`` header, one line per size, ``# Avg bus bandwidth``), so that a
    simulated and a measured run can be read side by side. Only the out-of-place block exists (a simulation
    has no in-place variant) and ``#wrong`` is ``N/A``, as nccl-tests prints it when data checks are off.

    Examples
    --------
    >>> rows = [{"op": "allreduce", "algorithm": "ring", "procs": 4, "bytes": 1048576.0, "topology": "ideal",
    ...          "network": "flow", "time_s": 5e-4, "algbw_Bps": 1048576 / 5e-4,
    ...          "busbw_Bps": 1.5 * 1048576 / 5e-4, "events": 9, "wall_s": 0.001}]
    >>> print(nccl_table(rows, group_size=4, groups=1).splitlines()[4])
         1048576        262144     float     sum      -1    500.0    2.10    3.15     N/A
    """
    first = rows[0]
    op = str(first["op"])
    redop = "sum" if op in ("allreduce", "reduce", "reduce_scatter") else "none"
    root = 0 if op in ("broadcast", "reduce") else -1
    where = f"{groups} groups of {group_size} ranks at once" if groups > 1 else f"{group_size} ranks"
    lines = [
        f"# dnnsim collective: {op}, algorithm {first['algorithm']}, {where}, topology {first['topology']}, "
        f"network {first['network']}",
        "#",
        f"# {'size':>10}  {'count':>12}  {'type':>8}  {'redop':>6}  {'root':>6}  {'time':>7}  {'algbw':>6}  "
        f"{'busbw':>6}  {'#wrong':>6}",
        f"# {'(B)':>10}  {'(elements)':>12}  {'':>8}  {'':>6}  {'':>6}  {'(us)':>7}  {'(GB/s)':>6}  {'(GB/s)':>6}",
    ]
    for r in rows:
        lines.append(f"{int(r['bytes']):12d}  {_nccl_count(op, float(r['bytes']), group_size):12d}  "
                     f"{'float':>8}  {redop:>6}  {root:6d}  {_nccl_time(float(r['time_s']) * 1e6)}  "
                     f"{float(r['algbw_Bps']) / 1e9:6.2f}  {float(r['busbw_Bps']) / 1e9:6.2f}  {'N/A':>6}")
    if "nccl_choice" in first:  # what NCCL_DEBUG_SUBSYS=TUNING would log, after the table nccl-tests prints
        lines.append("# NCCL's choice: " + "; ".join(_choice_runs(rows)))
    avg = sum(float(r["busbw_Bps"]) for r in rows) / len(rows) / 1e9
    events = sum(int(r["events"]) for r in rows)
    wall = sum(float(r["wall_s"]) for r in rows)
    lines += [f"# Avg bus bandwidth    : {avg:g} ", f"# Simulated: {events} events in {wall:.3g} s of wall time",
              "#"]
    return "\n".join(lines)
