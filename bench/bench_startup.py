"""Whole-process wall time of short CLI calls: ``dnnsim --help`` and a 16-rank collective.

Users call dnnsim from shells and scripts, where the interpreter start and the imports are most of a short
call. Each case runs as a fresh process ``--repeat`` times; the median and the minimum are printed. The
simulation itself of the collective is a few milliseconds (its ``wall_s`` field); the rest is start-up.

    python bench/bench_startup.py [--repeat 9]

Targets: ``--help`` under 0.2 s, the collective under 0.4 s (on an idle core).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

CASES = {
    "help": ["--help"],
    "collective-16": ["collective", "--op", "allreduce", "--algorithm", "ring", "--procs", "16",
                      "--bytes", "1MiB", "--topology", "ideal", "--network", "flow"],
}
TARGET_S = {"help": 0.2, "collective-16": 0.4}


def command() -> list[str]:
    """The installed ``dnnsim`` script next to this interpreter, else ``python -m sim``."""
    script = Path(sys.executable).with_name("dnnsim")
    found = str(script) if script.exists() else shutil.which("dnnsim")
    return [found] if found else [sys.executable, "-m", "sim"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    base = command()
    # as users run it: byte-code cached (a first, untimed call writes it)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    print(f"{'case':<16} {'median s':>9} {'min s':>7} {'target s':>9}")
    for name, argv in CASES.items():
        subprocess.run(base + argv, check=True, stdout=subprocess.DEVNULL, env=env)
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            subprocess.run(base + argv, check=True, stdout=subprocess.DEVNULL, env=env)
            times.append(time.perf_counter() - t0)
        print(f"{name:<16} {statistics.median(times):9.3f} {min(times):7.3f} {TARGET_S[name]:9.1f}")


if __name__ == "__main__":
    main()
