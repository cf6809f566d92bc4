"""Training-step cost per backend: compile time and step time, per teacher-forcing branch.

    python benchmarks/bench_train_step.py --preset svg                 # TF, TF+XLA, JAX (XLA)
    python benchmarks/bench_train_step.py --preset small --configs jax  # one configuration
    python benchmarks/bench_train_step.py --preset svg --configs jax --compile-only

Times the real `model.train_on_batch` on a fixed random batch. The teacher-forcing ratio
is 1 (always the teacher-forced branch: batched encoder and decoder) or 0 (always the
free-running branch: the symbolic loop); each is its own compiled train function, and its
first call (trace + compile + one step) is reported apart from the median of the next
steps. Every configuration runs in its own process, one after the other, so the ratios
come from one run on one machine. Writes benchmarks/results/train_step-<preset>.json.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from results_file import write_results

CONFIGS = {  # name: (backend, jit_compile)
    "tensorflow": ("tensorflow", False),
    "tensorflow-xla": ("tensorflow", True),
    "jax": ("jax", True),  # JAX compiles with XLA; it has no other graph mode
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small", help="model preset (default: small)")
    parser.add_argument("--batch-size", type=int, default=16, help="sequences per step (default: 16)")
    parser.add_argument("--configs", nargs="+", choices=sorted(CONFIGS), default=sorted(CONFIGS),
                        help="configurations to time (default: all)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per branch after the first (default: 3)")
    parser.add_argument("--timeout", type=int, default=1200,
                        help="seconds one configuration may take before it is reported as timed out")
    parser.add_argument("--mixed-precision", action="store_true", help="mixed precision (GPUs)")
    parser.add_argument("--compile-only", action="store_true",
                        help="JAX only: time the ahead-of-time XLA compile of the whole train step "
                        "(both branches) and run no step")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results",
                        help="folder for train_step-<preset>[-compile].json (default: benchmarks/results)")
    return parser.parse_args()


def time_branches(args, jit_compile):
    """Runs in the worker process: {branch: timings} for the current backend."""
    import keras

    from keras_cvae.config import replace
    from keras_cvae.tasks.svg.config import get_preset
    from keras_cvae.tasks.svg.model import SVG
    from keras_cvae.training import compile_model

    if args.mixed_precision:
        keras.mixed_precision.set_global_policy(
            "mixed_bfloat16" if keras.backend.backend() == "jax" else "mixed_float16")
    preset = get_preset(args.preset)
    model = SVG(preset.model, seed=0)
    rng = np.random.default_rng(0)
    shape = (args.batch_size, preset.model.window_length)
    batch = {"frames": rng.random((*shape, 64, 64, 3), dtype=np.float32),
             "conditions": rng.normal(size=(*shape, 7)).astype("float32")}
    if args.compile_only:
        return {"compile": time_jax_compile(model, preset, args.batch_size, batch)}
    results = {}
    for name, ratio in (("teacher_forced", 1.0), ("free_running", 0.0)):
        train = replace(preset.train, batch_size=args.batch_size, jit_compile=jit_compile, tfr=ratio,
                        tfr_floor=0.0, tfr_decay_step=0.0)
        compile_model(model, train)
        # The training code leaves TensorFlow's XLA off without a GPU; a benchmark of XLA
        # must force it, or its "xla" figures would be graph mode's.
        model.jit_compile = jit_compile
        start = time.perf_counter()
        model.train_on_batch(batch)
        first = time.perf_counter() - start
        times = []
        for _ in range(args.steps):
            start = time.perf_counter()
            logs = model.train_on_batch(batch, return_dict=True)
            float(logs["loss"])
            times.append(time.perf_counter() - start)
        median = float(np.median(times))
        results[name] = {
            "first_step_s_with_compile": round(first, 2),
            "compile_s_estimate": round(first - median, 2),
            "step_s": [round(t, 3) for t in times],
            "step_s_median": round(median, 3),
            "sequences_per_s": round(args.batch_size / median, 2),
            "xla": bool(model.jit_compile),
        }
        print(keras.backend.backend(), "xla" if jit_compile else "no-xla", name, json.dumps(results[name]),
              flush=True)
    return results


def jax_step_compile_times(model, batch) -> dict:
    """Seconds to trace and XLA-compile the JAX train step of each teacher-forcing branch
    (each its own program, `backends.jax_branch_steps`) for `batch`; no step is run.

    Args:
        model: A compiled SVG model on JAX.
        batch: {"frames", "conditions"} arrays of the batch shape.
    """
    from keras_cvae import backends

    state = tuple([v.value for v in variables] for variables in (
        model.trainable_variables, model.non_trainable_variables,
        model.optimizer.variables, model.metrics_variables))
    schedule, state = backends.jax_training_schedule(model, state)
    results = {}
    for teacher_forced, step in backends.jax_branch_steps(model).items():
        start = time.perf_counter()
        lowered = step.lower(state, batch, schedule)
        traced = time.perf_counter() - start
        lowered.compile()
        total = time.perf_counter() - start
        results["teacher_forced" if teacher_forced else "free_running"] = {
            "trace_s": round(traced, 2), "xla_compile_s": round(total - traced, 2), "total_s": round(total, 2)}
    return results


def time_jax_compile(model, preset, batch_size, batch):
    """Seconds to trace and XLA-compile the JAX train step, each branch, no step run."""
    from keras_cvae.config import replace
    from keras_cvae.training import compile_model

    compile_model(model, replace(preset.train, batch_size=batch_size, jit_compile=True))
    result = jax_step_compile_times(model, batch)
    print(json.dumps(result), flush=True)
    return result


def run_config(args, name):
    """Runs one configuration in a fresh process; its results or why there are none."""
    backend, _ = CONFIGS[name]
    command = [sys.executable, __file__, "--worker", name, "--preset", args.preset,
               "--batch-size", str(args.batch_size), "--steps", str(args.steps)]
    command += [flag for flag, on in (("--mixed-precision", args.mixed_precision),
                                      ("--compile-only", args.compile_only)) if on]
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired as timeout:
        # The worker prints each branch's figures as it gets them: keep what came.
        partial = timeout.stdout.decode() if isinstance(timeout.stdout, bytes) else (timeout.stdout or "")
        return {"error": f"timed out after {args.timeout} s (compile included)",
                "finished_before_timeout": partial.strip().splitlines()}
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    args = parse_args()
    if args.worker:
        print(json.dumps(time_branches(args, CONFIGS[args.worker][1])))
        return
    results = {}
    for name in args.configs:
        results[name] = run_config(args, name)
        print(name, json.dumps(results[name]), flush=True)
    write_results(args.out / f"train_step-{args.preset}{'-compile' if args.compile_only else ''}.json",
                  "SVG train step (train_on_batch) per backend and teacher-forcing branch", results,
                  preset=args.preset, batch_size=args.batch_size, mixed_precision=args.mixed_precision)

if __name__ == "__main__":
    main()
