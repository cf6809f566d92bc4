"""Throughput of the embedded pushing world (`keras_cvae.data.pushing_sim`).

Generates `--sequences` sequences single-process (both cameras rendered), three times, and
reports frames per second (median of the runs). Run it pinned to one core:

    taskset -c 0 .venv/bin/python benchmarks/bench_generator.py

Writes benchmarks/results/generator.json with the machine, command, git commit and numbers.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
from keras_cvae.data.pushing_sim import SimConfig, simulate_sequence


def _git_commit():
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=64, help="sequences generated per run (default: 64)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs; the median is reported (default: 3)")
    parser.add_argument("--seed", type=int, default=0, help="simulator seed of the first run (default: 0)")
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "generator.json"),
                        help="JSON file for the figures (default: benchmarks/results/generator.json)")
    args = parser.parse_args()

    config = SimConfig()
    simulate_sequence(args.seed, 10**6, config)  # warm-up (imports, caches)
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    times, cpu_times = [], []
    for run in range(args.runs):
        start, cpu_start = time.perf_counter(), time.process_time()
        for index in range(args.sequences):
            simulate_sequence(args.seed + run, index, config)
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    frames = args.sequences * config.sequence_length
    fps = [frames / t for t in times]
    cpu_fps = [frames / t for t in cpu_times]
    median_fps = statistics.median(fps)
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:
        cpus = None
    affinity = len(cpus) if cpus is not None else None
    command = " ".join(["python"] + sys.argv)
    if cpus is not None and affinity < (os.cpu_count() or affinity):
        command = f"taskset -c {','.join(map(str, cpus))} {command}"
    result = {
        "benchmark": "pushing_sim generator throughput (both cameras)",
        "command": command,
        "git_commit": _git_commit(),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "cpu_count": os.cpu_count(),
            "cpus_usable_by_this_process": affinity,
            "cpu_affinity": cpus,
        },
        "sequences_per_run": args.sequences,
        "frames_per_sequence": config.sequence_length,
        "image_size": config.image_size,
        "runs": args.runs,
        "seconds_per_run": [round(t, 4) for t in times],
        "frames_per_second_per_run": [round(f, 1) for f in fps],
        "frames_per_second_median": round(median_fps, 1),
        "cpu_seconds_per_run": [round(t, 4) for t in cpu_times],
        "frames_per_cpu_second_median": round(statistics.median(cpu_fps), 1),
        "load_average_before": load_before,
        "note": "frames/s is wall clock on one core; frames per CPU-second discounts time "
        "the process spent waiting for a core that other processes were using.",
        "sequences_per_second_median": round(median_fps / config.sequence_length, 2),
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(f"{median_fps:.0f} frames/s wall, {statistics.median(cpu_fps):.0f} frames per CPU-second "
          f"(median of {args.runs} runs of {args.sequences} sequences; {affinity} usable CPU(s); "
          f"load average {load_before}) -> {args.output}")


if __name__ == "__main__":
    main()
