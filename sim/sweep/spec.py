"""Sweep files: parse and check ``SWEEP.yaml`` and expand it into the list of run configs (points).

A sweep file has three parts, all optional except that it must define at least one point::

    base:                 # a run config (keys of sim.config.RunConfig), shared by every point
      model: alexnet
      compute: paper-knl
    vary:                 # key -> non-empty list: the cartesian product, first key slowest
      strategy: [batch, integrated]
      topology: ["ideal:latency=2us,bandwidth=6GiB/s", "fattree:k=8"]
    zip:                  # groups of keys whose lists move together (equal lengths); each group is
      - batch: [512, 2048, 8192]      # one more axis of the product, after the ``vary`` keys
        procs: [128, 512, 2048]
    name: weak-scaling    # optional label; ``description`` is optional too
    select: best          # optional: each point keeps only the best strategy, grid and modes (below)

``grid: all`` (in ``base`` or among a ``vary``/``zip`` list) expands, innermost, into every valid grid of
that point's ``procs`` and ``strategy``: all factorizations Pr x Pc (Pr ascending) for ``integrated``,
``1xP`` for ``batch``, ``Px1`` for ``model`` and ``domain``.

Every point gets a ``point_id``: the first 16 hex digits of the SHA-256 of the canonical JSON (sorted keys,
no spaces) of its *resolved* config — :meth:`sim.config.RunConfig.resolved`, defaults and derived grid and
layer modes filled in — so two spellings of the same run share an id. A point whose config is invalid
(say a grid that does not factor procs) is hashed from its keys over the defaults and carries its error;
the runner records it as an error row without running it. Points with equal ids are kept once (the first).

``select: best`` makes every point of the other axes a search: it runs :func:`sim.best.rank_best`
(``dnnsim best``: every strategy, grid and layer-mode candidate, re-timed exactly on small lists) and
records its best row, with the winner's ``strategy``, ``grid``, ``conv``, ``fc`` and
``speedup_vs_batch``. ``strategy`` and ``grid`` may then not be set (the search picks them);
``conv``/``fc`` restrict the candidates as in ``dnnsim best``. Such a point's config has ``strategy``
``integrated`` and no ``grid``; its id hashes ``select: best`` too, so it never collides with an
ordinary point. Resume, errors and workers work as for ordinary points (:mod:`sim.sweep.rows`).
``select: all`` (the default) runs every point as given.

Mistakes in the file itself (malformed YAML, unknown keys, empty lists, unequal zip lengths, a key set in
two places) raise :class:`~sim.errors.UserError`.

Examples
--------
>>> spec = SweepSpec.from_dict({"base": {"batch": 64}, "vary": {"procs": [4, 8]},
...                             "zip": [{"model": ["alexnet", "vgg16"], "dtype_bytes": [4, 2]}]})
>>> [(p.config["procs"], p.config["model"]) for p in expand(spec)]
[(4, 'alexnet'), (4, 'vgg16'), (8, 'alexnet'), (8, 'vgg16')]
>>> [p.config["grid"] for p in expand(SweepSpec.from_dict({"base": {"procs": 4, "batch": 64,
...                                   "strategy": "integrated", "grid": "all"}}))]
['1x4', '2x2', '4x1']
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.config import RunConfig, make_config
from sim.errors import UserError
from sim.grid import all_grids
from sim.yamlfile import read_yaml_mapping

TOP_KEYS = ("base", "vary", "zip", "name", "description", "select")
#: values of ``select``: every point as given, or the best strategy/grid/modes per point
SELECT_MODES = ("all", "best")
#: keys a ``select: best`` sweep may not set (the search picks them)
BEST_PICKS = ("strategy", "grid")
CONFIG_KEYS: tuple[str, ...] = tuple(RunConfig.model_fields)
_SCALARS = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class SweepSpec:
    """A checked sweep: the base config, the varied keys and the zipped groups."""

    base: dict[str, Any] = field(default_factory=dict)
    vary: dict[str, list[Any]] = field(default_factory=dict)
    zip: list[dict[str, list[Any]]] = field(default_factory=list)
    name: str | None = None
    description: str | None = None
    source: str = "sweep"
    select: str = "all"

    @classmethod
    def from_dict(cls, data: Any, source: str = "sweep") -> SweepSpec:
        """Check a sweep mapping (as read from YAML) and build the spec; raises :class:`UserError`."""
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise UserError("sweep", f"{source} holds a {type(data).__name__}, not a mapping",
                            "a YAML mapping with base, vary and zip")
        for key in data:
            if key not in TOP_KEYS:
                raise UserError("sweep", f"unknown key {key!r} in {source}", "one of " + ", ".join(TOP_KEYS))
        base = _check_base(data.get("base") or {}, source)
        vary = _check_lists(data.get("vary") or {}, "vary", source)
        zip_groups = _check_zip(data.get("zip") or [], source)
        seen: dict[str, str] = {}
        for where, keys in [("vary", list(vary))] + [(f"zip[{i}]", list(g)) for i, g in enumerate(zip_groups)]:
            for key in keys:
                if key in seen:
                    raise UserError(f"{where}.{key}", f"{key!r} is already varied in {seen[key]}",
                                    "each key in at most one of vary and the zip groups")
                seen[key] = where
        for key in ("name", "description"):
            if data.get(key) is not None and not isinstance(data[key], str):
                raise UserError(key, f"{data[key]!r} is not a string", "a string")
        select = data.get("select", "all")
        if select not in SELECT_MODES:
            raise UserError("select", f"{select!r} is not a selection", " | ".join(SELECT_MODES))
        if select == "best":
            for key in BEST_PICKS:
                where = "base" if key in base else seen.get(key)
                if where is not None:
                    raise UserError(f"{where}.{key}", f"select: best picks the {key} itself",
                                    f"no {key} with select: best (conv/fc restrict the candidates), "
                                    "or select: all")
        return cls(base, vary, zip_groups, data.get("name"), data.get("description"), source, select)

    def axes(self) -> list[list[dict[str, Any]]]:
        """The axes of the product: one per ``vary`` key, then one per zip group; each a list of
        assignments (dicts of key -> value)."""
        out = [[{key: v} for v in values] for key, values in self.vary.items()]
        for group in self.zip:
            keys = list(group)
            out.append([dict(zip(keys, vals, strict=True)) for vals in zip(*(group[k] for k in keys), strict=True)])
        return out


@dataclass(frozen=True)
class Point:
    """One run of a sweep.

    Attributes
    ----------
    point_id : str
        Stable hash of the resolved config (module docstring).
    config : dict
        The resolved config (every RunConfig field), or, for an invalid point, its keys over the defaults.
    error : str or None
        The one-line error of an invalid point (it is recorded, not run).
    select : str
        ``all`` (run the config) or ``best`` (run ``dnnsim best`` on it and keep the best row).
    """

    point_id: str
    config: dict[str, Any]
    error: str | None = None
    select: str = "all"  #: ``best``: evaluate by the best-per-point search (module docstring)


def _normalize_key(key: Any) -> str:
    return str(key).replace("-", "_")


def _check_key(key: str, where: str, source: str) -> None:
    if key not in CONFIG_KEYS:
        raise UserError(where, f"unknown config key {key!r} in {source}", "one of " + ", ".join(CONFIG_KEYS))


def _check_value(value: Any, where: str) -> None:
    if not isinstance(value, _SCALARS):
        raise UserError(where, f"{value!r} is a {type(value).__name__}, not a single value",
                        "a string, number, boolean or null")


def _check_base(base: Any, source: str) -> dict[str, Any]:
    if not isinstance(base, dict):
        raise UserError("base", f"{type(base).__name__} is not a mapping", "a mapping of run config keys")
    out = {}
    for key, value in base.items():
        name = _normalize_key(key)
        _check_key(name, f"base.{name}", source)
        _check_value(value, f"base.{name}")
        out[name] = value
    return out


def _check_lists(mapping: Any, where: str, source: str) -> dict[str, list[Any]]:
    if not isinstance(mapping, dict):
        raise UserError(where, f"{type(mapping).__name__} is not a mapping", "a mapping of key -> list of values")
    out = {}
    for key, values in mapping.items():
        name = _normalize_key(key)
        _check_key(name, f"{where}.{name}", source)
        if not isinstance(values, list):
            raise UserError(f"{where}.{name}", f"{values!r} is not a list", "a non-empty list of values")
        if not values:
            raise UserError(f"{where}.{name}", "empty list", "a non-empty list of values")
        for value in values:
            _check_value(value, f"{where}.{name}")
        out[name] = list(values)
    return out


def _check_zip(groups: Any, source: str) -> list[dict[str, list[Any]]]:
    if isinstance(groups, dict):
        groups = [groups]
    if not isinstance(groups, list):
        raise UserError("zip", f"{type(groups).__name__} is not a list", "a list of mappings key -> list")
    out = []
    for i, group in enumerate(groups):
        checked = _check_lists(group, f"zip[{i}]", source)
        if not checked:
            raise UserError(f"zip[{i}]", "empty group", "a mapping of at least one key -> list")
        lengths = {k: len(v) for k, v in checked.items()}
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{k}: {n}" for k, n in lengths.items())
            raise UserError(f"zip[{i}]", f"lists of unequal lengths ({shown})",
                            "lists of the same length in one zip group")
        out.append(checked)
    return out


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and check a sweep file; every problem is one :class:`UserError` (field ``sweep``...)."""
    data = read_yaml_mapping(path, "sweep", "a sweep YAML file: a mapping with base, vary and zip")
    return SweepSpec.from_dict(data, source=str(path))


# ---------------------------------------------------------------------------------------- points
_DEFAULTS: dict[str, Any] = {name: f.default for name, f in RunConfig.model_fields.items()}


def canonical_hash(config: dict[str, Any], digits: int = 16) -> str:
    """First ``digits`` hex digits of the SHA-256 of ``config``'s canonical JSON.

    >>> canonical_hash({"b": 1, "a": 2}) == canonical_hash({"a": 2, "b": 1})
    True
    """
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:digits]


def resolve_point(raw: dict[str, Any], select: str = "all") -> Point:
    """The :class:`Point` of a raw point dict: resolved config and id, or its error. With ``select ==
    "best"`` the config is the search's base (``strategy: integrated``, no grid, ``conv``/``fc`` as given)
    and the id hashes ``select`` too."""
    if select == "best":
        raw = {**raw, "strategy": "integrated"}
        try:
            config = make_config(raw).model_dump()
        except UserError as exc:
            config = {**_DEFAULTS, **raw}
            return Point(canonical_hash({**config, "select": select}), config, str(exc), select)
        return Point(canonical_hash({**config, "select": select}), config, None, select)
    try:
        config = make_config(raw).resolved()
    except UserError as exc:
        config = {**_DEFAULTS, **raw}
        return Point(canonical_hash(config), config, str(exc))
    return Point(canonical_hash(config), config)


def grids_for(point: dict[str, Any]) -> list[str] | None:
    """The grids ``grid: all`` stands for at this point, or None when procs/strategy are not usable."""
    procs = point.get("procs", _DEFAULTS["procs"])
    strategy = point.get("strategy", _DEFAULTS["strategy"])
    if isinstance(procs, bool) or not isinstance(procs, int) or procs < 1:
        return None
    if strategy == "batch":
        return [f"1x{procs}"]
    if strategy in ("model", "domain"):
        return [f"{procs}x1"]
    return [f"{pr}x{pc}" for pr, pc in all_grids(procs)]


def raw_points(spec: SweepSpec) -> list[dict[str, Any]]:
    """The raw point dicts of ``spec``, in order (product of the axes, ``grid: all`` innermost)."""
    out: list[dict[str, Any]] = []
    for combo in itertools.product(*spec.axes()):
        point = dict(spec.base)
        for assignment in combo:
            point.update(assignment)
        if point.get("grid") == "all":
            grids = grids_for(point)
            if grids is not None:
                out.extend({**point, "grid": g} for g in grids)
                continue
        out.append(point)
    return out


def expand(spec: SweepSpec) -> list[Point]:
    """Every :class:`Point` of ``spec`` in sweep order, duplicates (same ``point_id``) dropped."""
    seen: set[str] = set()
    out = []
    for raw in raw_points(spec):
        point = resolve_point(raw, spec.select)
        if point.point_id not in seen:
            seen.add(point.point_id)
            out.append(point)
    return out


__all__ = ["BEST_PICKS", "CONFIG_KEYS", "SELECT_MODES", "Point", "SweepSpec", "canonical_hash", "expand", "grids_for", "load_sweep",
           "raw_points", "resolve_point"]
