"""Prediction latency and throughput: onnxruntime (model.onnx) vs the Keras model, on this CPU.

    python benchmarks/bench_export.py                         # svg and small presets, batch 1 and 16
    python benchmarks/bench_export.py --presets small --runs 3

Untrained weights (speed does not depend on them). For each preset the whole prediction
(n_past context frames -> n_future frames) is exported to ONNX in a temporary folder, then
timed `--runs` times after one warm-up call, per batch size, in these runtimes:
onnxruntime on model.onnx, onnxruntime stepping step.onnx n_past + n_future - 1 times
(the streaming protocol), the Keras model traced as a tf.function (graph mode, as served),
and with --eager the Keras model called eagerly.

The presets in --step-only-presets skip model.onnx, for machines short of memory:
converting the svg model.onnx (one while loop) peaks near 8 GB, see
benchmarks/results/export_svg.json. Reports the median seconds per call and the sequences per second.
Writes --out (default benchmarks/results/export.json) with the machine, command and commit.
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

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_cvae import export
from keras_cvae.tasks.svg.config import get_preset


def timed(call, runs):
    """Median wall-clock seconds of `call()` over `runs` calls after one warm-up."""
    call()
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return float(np.median(seconds)), seconds


def bench_preset(name, batches, runs, eager, whole_onnx):
    import onnxruntime
    import tensorflow as tf

    from keras_cvae.export.writers import write_onnx
    from keras_cvae.tasks.svg.export import export_graphs
    from keras_cvae.tasks.svg.model import SVG

    model = SVG(get_preset(name).model, seed=0)
    graphs = export_graphs(model)
    predict = graphs.predict
    results = {"config": model.config.to_dict(), "batches": {}}
    with tempfile.TemporaryDirectory(prefix="bench-export-") as folder:
        sessions = {}
        functions = {"step.onnx": graphs.step}
        if whole_onnx:
            functions["model.onnx"] = predict
        for file_name, function in functions.items():
            path = Path(folder) / file_name
            start = time.perf_counter()
            write_onnx(function, path, export.ExportConfig().opset)
            results[f"{file_name} conversion_seconds"] = time.perf_counter() - start
            results[f"{file_name} megabytes"] = path.stat().st_size / 1e6
            sessions[file_name] = onnxruntime.InferenceSession(
                str(path), providers=["CPUExecutionProvider"]
            )
        for batch in batches:
            inputs = graphs.check_inputs(batch, seed=0)
            tensors = {key: tf.constant(value) for key, value in inputs.items()}
            runtimes = {
                "onnxruntime_stepped": lambda: graphs.run_step_onnx(sessions["step.onnx"], inputs),
                "keras_tf_function": lambda: predict(**tensors)["frames"].numpy(),
            }
            if whole_onnx:
                runtimes["onnxruntime"] = lambda: sessions["model.onnx"].run(["frames"], inputs)
            if eager:
                runtimes["keras_eager"] = lambda: np.asarray(model(tensors, training=False))
            row = {}
            for runtime, call in runtimes.items():
                median, seconds = timed(call, runs)
                row[runtime] = {
                    "median_seconds": median,
                    "sequences_per_second": batch / median,
                    "seconds_per_run": seconds,
                }
                print(f"{name} batch {batch} {runtime}: {median * 1000:.1f} ms, "
                      f"{batch / median:.1f} sequences/s", flush=True)
            results["batches"][str(batch)] = row
    return results


def machine():
    import onnxruntime
    import tensorflow as tf

    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "cpus_usable_by_this_process": len(os.sched_getaffinity(0)),
        "load_average_at_start": os.getloadavg(),
        "tensorflow": tf.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--presets", nargs="+", default=["small", "svg"], help="model presets to time")
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 16], help="batch sizes")
    parser.add_argument("--runs", type=int, default=5, help="timed calls per measurement (median reported)")
    parser.add_argument("--eager", action="store_true", help="also time the eager Keras call (slow)")
    parser.add_argument("--step-only-presets", nargs="*", default=[],
                        help="presets timed without model.onnx (its svg conversion peaks near 8 GB)")
    parser.add_argument("--out", default="benchmarks/results/export.json", help="result file")
    args = parser.parse_args(argv)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    report = {
        "benchmark": "whole prediction (n_past -> n_future frames): onnxruntime vs Keras, CPU",
        "command": "python " + " ".join(["benchmarks/bench_export.py", *(argv or sys.argv[1:])]),
        "git_commit": commit,
        "machine": machine(),
        "runs": args.runs,
        "note": "untrained weights; median of the timed runs after one warm-up call",
        "presets": {name: bench_preset(name, args.batches, args.runs, args.eager, name not in args.step_only_presets) for name in args.presets},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.tmp")
    temporary.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(temporary, out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
