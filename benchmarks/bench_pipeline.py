"""Throughput of make_dataset in training mode, tf.data engine beside the NumPy engine.

    python benchmarks/bench_pipeline.py                 # generated data in a temp dir
    python benchmarks/bench_pipeline.py --data DIR      # an existing dataset (bair or lab)

Without --data it first generates `--sequences` train sequences with the pushing simulator
(TensorFlow-free, timed: the embedded dataset's layout at a smaller size). For every engine
setting it iterates `--batches` training batches after `--warmup` batches, `--runs` times
(a fresh dataset each run), and reports the median batches/s and sequences/s. NumPy rows
load with `iterate_numpy` (an ordered thread pool, like `fit`'s loader); the process row
uses Keras's own loader, which is what `fit` runs with use_multiprocessing=True. It also
times CRC-32C on 750 KB records (MB/s). Writes the numbers, the machine, the command and
the git commit to --out (default benchmarks/results/pipeline.json). TensorFlow is optional:
without it the tf.data row is skipped.
"""

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
from keras_cvae.data import NumpyEngine, iterate_numpy, make_dataset
from keras_cvae.data.crc32c import crc32c
from keras_cvae.data.generate import write_generated_dataset
from keras_cvae.data.pipeline import resolve_engine

RECORD_BYTES = 750_000  # about one BAIR record (two cameras, 30 frames)


@dataclass(frozen=True)
class Setting:
    """One benchmarked engine configuration."""

    engine: str  # "tf" or "numpy"
    workers: int = 1
    processes: bool = False

    @property
    def label(self) -> str:
        if self.engine == "tf":
            return "tf.data"
        kind = "processes, Keras loader" if self.processes else "threads"
        return f"numpy, {self.workers} worker{'s' if self.workers > 1 else ''} ({kind})"


def keras_loader(dataset):
    """Batches as `fit` gets them from a PyDataset (Keras's enqueuer, private API)."""
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

    adapter = PyDatasetAdapter(dataset)
    adapter.on_epoch_begin()
    try:
        yield from adapter.get_numpy_iterator()
    finally:
        adapter.on_epoch_end()  # stops the worker pool


def loader(dataset, setting: Setting):
    if setting.processes:
        yield from keras_loader(dataset)
    else:
        yield from iterate_numpy(dataset)


def measure(source, setting: Setting, args) -> tuple:
    """(batches/s, CPU ms per sequence of this process) of one run."""
    engine = "tf" if setting.engine == "tf" else NumpyEngine(workers=setting.workers,
                                                             use_multiprocessing=setting.processes)
    ds = make_dataset(source, "train", n_past=args.n_past, n_future=args.n_future,
                      batch_size=args.batch_size, training=True, seed=args.seed, engine=engine)
    with contextlib.closing(loader(ds, setting)) as batches:
        for _ in range(args.warmup):
            next(batches)
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(args.batches):
            next(batches)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    return args.batches / elapsed, 1e3 * cpu / (args.batches * args.batch_size)


def crc_mb_per_s(runs: int) -> list:
    data = np.random.default_rng(0).integers(0, 256, RECORD_BYTES, dtype=np.uint8).tobytes()
    crc32c(data)
    rates = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(20):
            crc32c(data)
        rates.append(20 * RECORD_BYTES / (time.perf_counter() - start) / 1e6)
    return rates


def generate(root: Path, n_train: int) -> dict:
    start = time.perf_counter()
    write_generated_dataset(root, n_train=n_train, n_test=0, seed=0, workers=None, progress=False)
    seconds = time.perf_counter() - start
    size = sum(p.stat().st_size for p in root.rglob("*.tfrecords"))
    return {"sequences": n_train, "seconds": round(seconds, 2), "sequences_per_s": round(n_train / seconds, 1),
            "megabytes": round(size / 1e6, 1), "simulator_workers": os.cpu_count()}


def run_settings(source, settings, args) -> list:
    rows = []
    for setting in settings:
        runs = [measure(source, setting, args) for _ in range(args.runs)]
        rates = [r for r, _ in runs]
        row = asdict(setting) | {
            "label": setting.label,
            "batches_per_s_median": round(statistics.median(rates), 2),
            "sequences_per_s_median": round(statistics.median(rates) * args.batch_size, 1),
            "batches_per_s_runs": [round(r, 2) for r in rates],
            "cpu_ms_per_sequence_median": round(statistics.median(c for _, c in runs), 3),
        }
        print(f"{setting.label:45s} {row['batches_per_s_median']:7.2f} batches/s "
              f"{row['sequences_per_s_median']:7.1f} sequences/s", flush=True)
        rows.append(row)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="dataset directory (default: generated, see --sequences)")
    parser.add_argument("--sequences", type=int, default=512, help="generated train sequences (default 512)")
    parser.add_argument("--batch-size", type=int, default=16, help="batch size (default 16)")
    parser.add_argument("--n-past", type=int, default=2, help="context frames (default 2)")
    parser.add_argument("--n-future", type=int, default=10, help="future frames (default 10)")
    parser.add_argument("--batches", type=int, default=100, help="timed batches per run (default 100)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed batches first (default 10)")
    parser.add_argument("--runs", type=int, default=3, help="runs; the median is reported (default 3)")
    parser.add_argument("--workers", default="1,2", help="NumPy engine thread workers to try (default 1,2)")
    parser.add_argument("--processes", type=int, default=2,
                        help="also time this many worker processes (Keras loader); 0 skips (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    parser.add_argument("--out", default="benchmarks/results/pipeline.json", help="JSON output ('' to skip)")
    args = parser.parse_args()

    has_tensorflow = resolve_engine(None) == "tf"
    settings = [Setting("tf")] if has_tensorflow else []
    settings += [Setting("numpy", int(w)) for w in args.workers.split(",")]
    if args.processes:
        settings.append(Setting("numpy", args.processes, processes=True))
    load_before = os.getloadavg()
    crc = crc_mb_per_s(args.runs)
    print(f"CRC-32C on {RECORD_BYTES // 1000} KB records: {statistics.median(crc):.0f} MB/s", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        generation = None
        source = args.data
        if source is None:
            source = Path(tmp) / "generated"
            generation = generate(source, args.sequences)
            print(f"generated {args.sequences} sequences without TensorFlow in {generation['seconds']} s", flush=True)
        rows = run_settings(source, settings, args)
    load_after = os.getloadavg()
    result = {
        "benchmark": "make_dataset training mode: tf.data and NumPy engines",
        "results": rows,
        "crc32c_mb_per_s_median": round(statistics.median(crc), 1),
        "crc32c_mb_per_s_runs": [round(r, 1) for r in crc],
        "generation": generation,
        "note": "NumPy thread rows read through iterate_numpy, the process row through Keras's "
                "PyDataset loader (what fit uses). cpu_ms_per_sequence is this process's CPU time "
                "(all its threads, not worker processes) per sequence. The machine may be shared: "
                "see the load averages.",
        "load_average_1min_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "frames_per_window": args.n_past + args.n_future,
        "batch_size": args.batch_size,
        "timed_batches_per_run": args.batches,
        "seed": args.seed,
        "data": args.data or f"generated (pushing simulator), {args.sequences} train sequences",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "cpus_usable": len(os.sched_getaffinity(0)), "python": platform.python_version(),
                    "numpy": np.__version__},
        "command": "python " + " ".join(sys.argv),
        "git_commit": subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                     cwd=ROOT).stdout.strip(),
    }
    if has_tensorflow:
        import tensorflow as tf

        result["machine"]["tensorflow"] = tf.__version__
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
