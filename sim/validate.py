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

``error = predicted / measured - 1``. :func:`summarize` gives the median and max of ``|error|``.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from sim.errors import UserError

KINDS = ("collective", "throughput", "scaling")
UNITS = {"collective": "busbw_GB/s", "throughput": "samples/s", "scaling": "speedup"}
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
    if not isinstance(measured, dict) or set(measured) - {"value", "unit"}:
        raise _bad(row_id, "'measured' is not a mapping of value and unit", "measured: {value: N, unit: U}")
    value = measured.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise _bad(row_id, f"measured value {value!r} is not a positive number", "a number > 0")
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
    return checked


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


def predict(row: dict[str, Any]) -> float:
    """dnnsim's value for an expressible row, in the row's unit."""
    setting = row["setting"]
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


def run_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One result per row: id, kind, setting, unit, measured, predicted, error (None for missing rows)."""
    results = []
    for row in rows:
        result = {"id": row["id"], "kind": row["kind"], "setting": _setting_text(row),
                  "unit": UNITS[row["kind"]], "measured": None, "predicted": None, "error": None}
        if "missing" not in row:
            measured = float(row["measured"]["value"])
            predicted = predict(row)
            result.update(measured=measured, predicted=predicted, error=predicted / measured - 1)
        results.append(result)
    return results


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Rows run, rows missing, median and max ``|error|`` and the id of the worst row."""
    errors = [(abs(r["error"]), r["id"]) for r in results if r["error"] is not None]
    summary: dict[str, Any] = {"rows": len(errors), "missing": len(results) - len(errors),
                               "median_abs_error": None, "max_abs_error": None, "worst": None}
    if errors:
        summary["median_abs_error"] = statistics.median(e for e, _ in errors)
        summary["max_abs_error"], summary["worst"] = max(errors)
    return summary
