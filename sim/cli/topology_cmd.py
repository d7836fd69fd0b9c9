"""``dnnsim topologies`` (builder kinds and presets) and ``dnnsim show-topology`` (size of one topology)."""

from __future__ import annotations

import click

from sim.cli.output import emit, format_option
from sim.errors import UserError


@click.command("topologies")
@format_option
def topologies(fmt: str) -> None:
    """List topology kinds (with their keys and defaults) and presets (with their values).

    A spec is KIND[:key=value,...], e.g. fattree:k=8,oversubscription=2, a preset name (optionally
    PRESET:key=value to override), or a .yaml/.yml/.graphml file.
    """
    from topologies.spec import describe_kinds, list_presets, load_preset

    rows = [{"name": r["kind"], "type": "kind", "keys": r["keys"], "description": r["doc"]}
            for r in describe_kinds()]
    for name in list_presets():
        preset = load_preset(name)
        keys = ", ".join(f"{k}={v}" for k, v in (preset.get("params") or {}).items())
        rows.append({"name": name, "type": f"preset ({preset['kind']})", "keys": keys,
                     "description": preset.get("description", "")})
    emit(rows, fmt)


@click.command("show-topology")
@click.argument("spec")
@click.option("--procs", type=int, default=None,
              help="Hosts needed: sized kinds create this many, fixed-size kinds must have at least this many.")
@click.option("--draw", "draw", type=click.Path(dir_okay=False), default=None,
              help="Also draw the topology to this .png/.svg/.pdf file.")
@click.option("--load", "load", type=click.Path(dir_okay=False), default=None,
              help="With --draw: colour each link by its mean utilisation in this links.csv (written by "
                   "dnnsim run --out on the same topology, flow or step network).")
@format_option
def show_topology(spec: str, procs: int | None, draw: str | None, load: str | None, fmt: str) -> None:
    """Print hosts, switches, links, diameter_hops and bisection_Bps of SPEC (plus α and 1/β)."""
    from topologies.routing import Router
    from topologies.spec import build_topology
    from topologies.stats import topology_stats

    G = build_topology(spec, n_hosts=procs)
    router = Router(G)
    row = {"topology": spec, "kind": G.graph.get("kind", "file"), **topology_stats(G),
           "alpha_s": router.alpha_s, "bandwidth_Bps": router.bandwidth_Bps}
    if load is not None and draw is None:
        raise UserError("load", "--load colours a drawing", "--draw FILE.png with --load")
    if draw is not None:
        from topologies.draw import draw_topology, read_link_load

        draw_topology(G, draw, title=spec, load=read_link_load(load) if load is not None else None)
    emit([row], fmt, single=True)
