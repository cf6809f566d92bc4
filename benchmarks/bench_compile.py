"""JAX/XLA compile times of what a GPU session compiles: the training step and the rollout.

    python benchmarks/bench_compile.py                     # the GPU session's configurations
    python benchmarks/bench_compile.py --configs svg:mixed_bfloat16:64 medium:float32:16

Each configuration (preset:precision:batch) runs in a fresh process: the training step
of each teacher-forcing branch (each its own XLA program) is lowered and compiled ahead
of time, without running a step, and so is the evaluation rollout (2 context -> 10
predicted frames, `evaluation.make_rollout`, whose loop holds the encoder and decoder
once). Nothing is run: XLA's CPU convolutions are too slow for the svg preset.
Trace and XLA compile times are reported apart. On a CPU this times
XLA's CPU compiler; a GPU's differs, but the trace time (Python) is the same and the
ratios between configurations carry over. On a CPU the loops of up to 32 steps are
unrolled (`backends.MAX_UNROLLED_STEPS`) where a GPU keeps them, so a CPU's figures
bound a GPU's program from above. Writes benchmarks/results/compile-<device>.json.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench_train_step import jax_step_compile_times
from results_file import ROOT, write_results

GPU_SESSION = ("svg:mixed_bfloat16:64", "svg:mixed_bfloat16:128", "svg:float32:64", "medium:mixed_bfloat16:64",
               "medium:float32:64")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=list(GPU_SESSION), metavar="PRESET:PRECISION:BATCH",
                        help="configurations to compile (default: the GPU session's)")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per configuration (default: 900)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results",
                        help="folder for compile-<device>.json (default: benchmarks/results)")
    return parser.parse_args()


def compile_times(preset_name, precision, batch_size):
    """In the worker: seconds to trace and compile the train step and the rollout."""
    import jax
    import keras
    import numpy as np

    from keras_cvae.config import replace
    from keras_cvae.tasks.svg.config import get_preset
    from keras_cvae.tasks.svg.model import SVG
    from keras_cvae.training import compile_model

    keras.mixed_precision.set_global_policy(precision)
    preset = get_preset(preset_name)
    model = SVG(preset.model, seed=0)
    compile_model(model, replace(preset.train, batch_size=batch_size))
    window = preset.model.window_length
    batch = {"frames": np.zeros((batch_size, window, 64, 64, 3), "float32"),
             "conditions": np.zeros((batch_size, window, 7), "float32")}
    results = {f"train_step_{branch}": times for branch, times in jax_step_compile_times(model, batch).items()}
    n_past, horizon = preset.model.n_past, preset.model.n_future
    inputs = {"context": np.zeros((batch_size, n_past, 64, 64, 3), "float32"),
              "conditions": np.zeros((batch_size, n_past + horizon, 7), "float32"),
              "noise": np.zeros((batch_size, horizon, preset.model.noise_dim), "float32")}
    variables = model.variables

    def rollout(values, inputs):  # as `evaluation.make_rollout` compiles it on JAX
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            return model(inputs, training=False)

    began = time.perf_counter()
    lowered = jax.jit(rollout).lower([v.value for v in variables], inputs)
    traced = time.perf_counter()
    lowered.compile()
    results["rollout"] = {"trace_s": round(traced - began, 2),
                          "xla_compile_s": round(time.perf_counter() - traced, 2)}
    results["device"] = {"platform": jax.devices()[0].platform, "kind": jax.devices()[0].device_kind}
    return results


def main():
    args = parse_args()
    if args.worker:
        preset, precision, batch = args.worker.split(":")
        print(json.dumps(compile_times(preset, precision, int(batch))))
        return
    results = {}
    for config in args.configs:
        command = [sys.executable, __file__, "--worker", config]
        env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "2"}
        began = time.perf_counter()
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=args.timeout, cwd=ROOT)
            results[config] = (json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else
                               {"error": (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]})
        except subprocess.TimeoutExpired:
            results[config] = {"error": f"timed out after {args.timeout} s"}
        results[config]["process_s"] = round(time.perf_counter() - began, 1)
        print(config, json.dumps(results[config]), flush=True)
    device = next((r["device"]["platform"] for r in results.values() if "device" in r), "unknown")
    write_results(args.out / f"compile-{device}.json",
                  "JAX/XLA ahead-of-time compile of the SVG train step (both branches) and the 2->10 rollout",
                  results)

if __name__ == "__main__":
    main()
