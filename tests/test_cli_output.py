"""Tables for people (units from column names, wrapped to the terminal) and CSV/JSON in SI units."""

from __future__ import annotations

import io
import json

import pandas as pd

from sim.cli.output import emit, format_cell, format_table
from sim.units import format_bytes, format_count, format_rate, format_time


def test_values_are_shown_in_the_unit_of_their_column():
    assert format_cell("iteration_s", 0.1234) == "123.4 ms"
    assert format_cell("bytes_sent_per_rank", 436.1 * 2**20) == "436.1 MiB"
    assert format_cell("memory_per_rank_bytes", 3 * 2**30) == "3 GiB"
    assert format_cell("busbw_Bps", 5.38e9) == "5.38 GB/s"
    assert format_cell("fwd_flops_per_sample", 1.456e9) == "1.456 G"
    assert format_cell("params", 60_965_224) == "60.97 M"
    assert format_cell("events", 8199) == "8,199"
    assert format_cell("dtype_bytes", 4) == "4"
    assert format_cell("overlap", False) == "False"
    assert format_cell("error", None) == ""


def test_no_e_notation_and_large_values_keep_their_digits():
    assert format_time(12345.0) == "12,345 s"
    assert format_time(2e-6) == "2 us"
    assert format_bytes(1000) == "1000 B"
    assert format_rate(6e9) == "6 GB/s"
    assert format_count(1.2e6) == "1.2 M"
    assert "e+" not in format_cell("dataset_size", 1_281_167)


def test_wide_tables_wrap_into_blocks_that_repeat_the_first_column():
    rows = [{"layer": f"conv{i}", **{f"col{k}_s": 1e-3 * (i + k) for k in range(12)}} for i in range(3)]
    text = format_table(list(rows[0]), rows, width=60)
    blocks = text.split("\n\n")
    assert len(blocks) > 1
    for block in blocks:
        lines = block.splitlines()
        assert lines[0].startswith("layer") and all(len(line) <= 60 for line in lines)
        assert [line.split()[0] for line in lines[1:]] == ["conv0", "conv1", "conv2"]
    # every column appears exactly once over the blocks
    headers = [c for block in blocks for c in block.splitlines()[0].split()[1:]]
    assert headers == [f"col{k}_s" for k in range(12)]


def test_csv_and_json_keep_si_units_and_full_precision():
    frame = pd.DataFrame([{"op": "allreduce", "time_s": 0.000365176123, "bytes": 1048576.0, "events": 39}])
    out = io.StringIO()
    emit(frame, "csv", stream=out)
    assert out.getvalue() == frame.to_csv(index=False, lineterminator="\n")
    out = io.StringIO()
    emit(frame, "json", single=True, stream=out)
    assert json.loads(out.getvalue()) == {"op": "allreduce", "time_s": 0.000365176123, "bytes": 1048576.0,
                                          "events": 39}
