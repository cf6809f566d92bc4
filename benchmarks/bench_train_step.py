"""Training-step cost: compile (trace + XLA) time and step time, per teacher-forcing branch.

    python benchmarks/bench_train_step.py --preset small            # no XLA
    python benchmarks/bench_train_step.py --preset svg --xla        # on a GPU

Times the two branches of `SVG.train_step` separately (teacher-forced: batched encoder and
decoder; free-running: while loop), each as its own compiled function on a fixed random
batch, and writes benchmarks/results/train_step-<preset>-<xla|no-xla>.json.
"""

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small", help="model preset (default: small)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the preset's")
    parser.add_argument("--xla", action="store_true", help="compile with XLA (default: off)")
    parser.add_argument("--mixed-precision", action="store_true", help="mixed_float16 (GPUs)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per branch (default: 5)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    return parser.parse_args()


def time_branch(model, frames, conditions, teacher_forced, jit_compile, steps):
    import tensorflow as tf

    step = tf.function(
        lambda: model._optimizer_step(frames, conditions, tf.constant(1.0), teacher_forced),
        jit_compile=jit_compile,
    )
    start = time.perf_counter()
    float(step()[0])
    first = time.perf_counter() - start
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        float(step()[0])
        times.append(time.perf_counter() - start)
    return {"first_step_s_with_compile": round(first, 2), "step_s": [round(t, 4) for t in times],
            "step_s_median": round(float(np.median(times)), 4)}


def main():
    args = parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    from keras_cvae.config import get_preset, replace
    from keras_cvae.model import SVG
    from keras_cvae.training import compile_model

    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    preset = get_preset(args.preset)
    train = replace(preset.train, batch_size=args.batch_size, jit_compile=args.xla)
    model = SVG(preset.model, seed=0)
    compile_model(model, train)
    rng = np.random.default_rng(0)
    shape = (train.batch_size, preset.model.sequence_length)
    frames = tf.constant(rng.random((*shape, 64, 64, 3), dtype=np.float32))
    conditions = tf.constant(rng.normal(size=(*shape, 7)).astype("float32"))
    results = {}
    for name, forced in (("teacher_forced", True), ("free_running", False)):
        results[name] = time_branch(model, frames, conditions, forced, args.xla, args.steps)
        results[name]["sequences_per_s"] = round(train.batch_size / results[name]["step_s_median"], 2)
        print(name, json.dumps(results[name]), flush=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    report = {
        "benchmark": "SVG train step per teacher-forcing branch",
        "preset": args.preset, "batch_size": train.batch_size, "frames": preset.model.sequence_length,
        "xla": args.xla, "mixed_precision": args.mixed_precision,
        "device": ", ".join(d.device_type for d in tf.config.list_physical_devices()),
        "results": results,
        "command": "python benchmarks/bench_train_step.py " + " ".join(
            f for f in (f"--preset {args.preset}", "--xla" if args.xla else "",
                        "--mixed-precision" if args.mixed_precision else "") if f),
        "git_commit": commit,
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count()},
        "load_average_after": list(os.getloadavg()),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"train_step-{args.preset}-{'xla' if args.xla else 'no-xla'}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
