"""Start-up time of `studio --help` (goal < 0.3 s): the CLI must not import torch, OpenCV or Qt to show help.

Each run is a fresh interpreter; the median of several runs is reported, next to a bare `python -c pass`.

    .venv/bin/python bench/startup.py [--full]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

GOAL_S = 0.3


def median_seconds(command: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="31 runs instead of 9")
    runs = 31 if parser.parse_args().full else 9
    bare = median_seconds([sys.executable, "-c", "pass"], runs)
    studio = median_seconds([sys.executable, "-m", "studio", "--help"], runs)
    print(f"python -c pass:  {bare * 1000:7.1f} ms (median of {runs})")
    print(f"studio --help:   {studio * 1000:7.1f} ms (median of {runs}, goal {GOAL_S * 1000:.0f} ms)")
    print(f"ratio={GOAL_S / studio:.2f}")


if __name__ == "__main__":
    main()
