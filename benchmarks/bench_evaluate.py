"""Speed of the evaluation rollout (sequences/s), svg preset, untrained weights.

    python benchmarks/bench_evaluate.py                       # 256 test sequences, 1 sample
    python benchmarks/bench_evaluate.py --data DIR --samples 5

Runs `keras_cvae.evaluation.evaluate_model` (rollout + PSNR/SSIM scoring + baseline) over
the test split of the embedded dataset (or --data): once on one batch to trace the
compiled functions, then `--runs` timed passes over `--sequences` sequences; the median
is reported. With `--xla-sequences N > 0` the XLA rollout is also measured on N
sequences (compile time reported separately: it is long on CPU). Speed does not depend
on the weights, so an untrained model stands in for a trained one. Writes the numbers,
the machine, the load average, the command and the git commit to --out.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from keras_cvae.data import make_dataset
from keras_cvae.evaluation import evaluate_model, make_rollout, make_scorer
from keras_cvae.tasks.svg.config import get_preset
from keras_cvae.tasks.svg.model import SVG


def timed_pass(model, args, sequences, rollout, scorer):
    """Seconds of one evaluation of `sequences` sequences."""
    dataset = make_dataset(args.data, "test", n_past=model.config.n_past, n_future=model.config.n_future,
                           batch_size=args.batch_size, training=False)
    start = time.perf_counter()
    result = evaluate_model(
        model, dataset, n_past=model.config.n_past, horizon=model.config.n_future, samples=args.samples,
        seed=0, batch_size=args.batch_size, max_sequences=sequences, rollout=rollout, scorer=scorer,
    )
    elapsed = time.perf_counter() - start
    if result.sequences != sequences:
        raise SystemExit(f"asked for {sequences} sequences, the split has {result.sequences}")
    return elapsed


def measure(model, args, jit_compile, sequences, runs):
    rollout, scorer = make_rollout(model, jit_compile), make_scorer(jit_compile)
    first = timed_pass(model, args, args.batch_size, rollout, scorer)
    seconds = [timed_pass(model, args, sequences, rollout, scorer) for _ in range(runs)]
    rates = [sequences / s for s in seconds]
    return {
        "jit_compile": jit_compile,
        "sequences": sequences,
        "first_batch_seconds_with_tracing": round(first, 2),
        "seconds_per_run": [round(s, 2) for s in seconds],
        "sequences_per_s_runs": [round(r, 3) for r in rates],
        "sequences_per_s_median": round(float(np.median(rates)), 3),
    }


def git_commit():
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="dataset directory (default: the embedded dataset)")
    parser.add_argument("--preset", default="svg", help="model preset (default svg)")
    parser.add_argument("--sequences", type=int, default=256, help="test sequences per timed run (default 256)")
    parser.add_argument("--samples", type=int, default=1, help="samples per sequence (default 1)")
    parser.add_argument("--batch-size", type=int, default=16, help="sequences per rollout call (default 16)")
    parser.add_argument("--runs", type=int, default=1, help="timed runs; the median is reported (default 1)")
    parser.add_argument("--xla-sequences", type=int, default=32,
                        help="sequences of the XLA measurement, 0 to skip (default 32)")
    parser.add_argument("--out", default="benchmarks/results/evaluate.json", help="JSON output ('' to skip)")
    args = parser.parse_args()

    model = SVG(get_preset(args.preset).model, seed=0)
    load_before = os.getloadavg()
    measurements = [measure(model, args, False, args.sequences, args.runs)]
    print(json.dumps(measurements[-1]), flush=True)
    if args.xla_sequences > 0:
        measurements.append(measure(model, args, True, args.xla_sequences, 1))
        print(json.dumps(measurements[-1]), flush=True)
    result = {
        "benchmark": "evaluate_model: rollout + PSNR/finn PSNR/SSIM + copy-last baseline, test split",
        "device": "CPU (no GPU on this machine)",
        "preset": args.preset,
        "weights": "untrained (speed does not depend on them)",
        "context_frames": model.config.n_past,
        "horizon": model.config.n_future,
        "samples": args.samples,
        "batch_size": args.batch_size,
        "measurements": measurements,
        "command": "python " + " ".join(sys.argv),
        "git_commit": git_commit(),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "cpus_usable_by_this_process": len(os.sched_getaffinity(0)),
        },
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "note": "the machine is shared with other jobs; the load average says how busy it was",
    }
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
