"""Throughput of make_dataset in training mode (sequences/s of T-frame windows).

    python benchmarks/bench_pipeline.py                 # synthetic BAIR files in a temp dir
    python benchmarks/bench_pipeline.py --data DIR      # an existing dataset (any source)

Iterates `--batches` batches after `--warmup` batches, `--runs` times (a fresh dataset
each run), and reports the median sequences/s. Writes the numbers, the machine, the
command and the git commit to --out (default benchmarks/results/pipeline.json).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from keras_cvae.data import bair_tfrecord as bair  # noqa: E402
from keras_cvae.data import make_dataset  # noqa: E402


def synthetic_dataset(root: Path, n_train: int) -> Path:
    """Random-pixel sequences in the BAIR layout (content does not matter for speed)."""
    rng = np.random.default_rng(0)
    template = {
        "image_aux1": rng.integers(0, 256, (30, 64, 64, 3), dtype=np.uint8),
        "image_main": rng.integers(0, 256, (30, 64, 64, 3), dtype=np.uint8),
        "action": rng.normal(size=(30, 4)).astype(np.float32),
        "endeffector_pos": rng.normal(size=(30, 3)).astype(np.float32),
    }
    for start in range(0, n_train, bair.SEQUENCES_PER_FILE):
        stop = min(start + bair.SEQUENCES_PER_FILE, n_train) - 1
        bair.write_sequences(root / "train" / bair.file_name(start, stop), [template] * (stop - start + 1))
    return root


def measure(source, args) -> float:
    ds = make_dataset(source, "train", n_past=args.n_past, n_future=args.n_future,
                      batch_size=args.batch_size, training=True, seed=args.seed)
    it = iter(ds)
    for _ in range(args.warmup):
        next(it)
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(args.batches):
        batch = next(it)
    batch["frames"].numpy()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    n = args.batches * args.batch_size
    return n / elapsed, 1e3 * cpu / n


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="dataset directory (default: synthetic BAIR files, see --sequences)")
    parser.add_argument("--sequences", type=int, default=1280, help="synthetic train sequences (default 1280)")
    parser.add_argument("--batch-size", type=int, default=16, help="batch size (default 16)")
    parser.add_argument("--n-past", type=int, default=2, help="context frames (default 2)")
    parser.add_argument("--n-future", type=int, default=10, help="future frames (default 10)")
    parser.add_argument("--batches", type=int, default=300, help="timed batches per run (default 300)")
    parser.add_argument("--warmup", type=int, default=30, help="untimed batches first (default 30)")
    parser.add_argument("--runs", type=int, default=3, help="runs; the median is reported (default 3)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed (default None: non-deterministic order, the training default)")
    parser.add_argument("--out", default="benchmarks/results/pipeline.json", help="JSON output ('' to skip)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        source = args.data or synthetic_dataset(Path(tmp), args.sequences)
        load_before = os.getloadavg()
        runs = [measure(source, args) for _ in range(args.runs)]
        load_after = os.getloadavg()
    rates = [r for r, _ in runs]
    cpu_ms = [c for _, c in runs]
    result = {
        "benchmark": "make_dataset training mode, BAIR TFRecords" if not args.data else "make_dataset training mode",
        "sequences_per_s_median": round(float(np.median(rates)), 1),
        "sequences_per_s_runs": [round(r, 1) for r in rates],
        "cpu_ms_per_sequence_median": round(float(np.median(cpu_ms)), 3),
        "note": "cpu_ms_per_sequence is this process's CPU time (all tf.data threads) per sequence; "
                "cores / cpu_ms * 1000 bounds the rate on an otherwise idle machine",
        "load_average_1min_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "frames_per_window": args.n_past + args.n_future,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "data": args.data or f"synthetic, {args.sequences} train sequences",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "cpus_usable": len(os.sched_getaffinity(0)), "python": platform.python_version()},
        "command": "python " + " ".join(sys.argv),
        "git_commit": subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip(),
    }
    import tensorflow as tf

    result["machine"]["tensorflow"] = tf.__version__
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
