"""Ablation of the lab's extras: base SVG, +hierarchical latents, +conditional conv, both.

    python benchmarks/ablation.py                        # small preset, 3 seeds, embedded data
    python benchmarks/ablation.py --epochs 2 --seeds 1 2 3 --max-sequences 128

Each variant trains with the same preset, steps and seed as the others
(`scripts/train.py --kl cyclical`, one fresh process per run), then is evaluated
2 -> 10 on the test split (`scripts/evaluate.py`: one sample and best of N, PSNR and SSIM,
copy-last beside). Prints a Markdown table (mean +- standard deviation over seeds) and
writes every run's numbers, wall times, the commands and the git commit to --out after
each run, so an interrupted ablation keeps what it measured. A run whose folder already
holds an evaluation is not redone.
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

VARIANTS = {
    "base": [],
    "+hierarchical": ["--latents", "hierarchical"],
    "+cconv": ["--conditioning", "cconv"],
    "+both": ["--latents", "hierarchical", "--conditioning", "cconv"],
}
REPORTED = {"model_single": "1 sample", "model_best_of_n": "best of N"}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small", help="training preset of every run (default: small)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs of every run (default: the preset's)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="training seeds (default: 1 2 3)")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS),
                        help="variants to run (default: all four)")
    parser.add_argument("--samples", type=int, default=5, help="samples per test sequence (default: 5)")
    parser.add_argument("--max-sequences", type=int, default=None,
                        help="test sequences evaluated (default: the whole test split)")
    parser.add_argument("--data", default=None, help="dataset (default: the embedded pushing data)")
    parser.add_argument("--runs", type=Path, default=Path("runs/ablation"), help="folder of the run folders")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/ablation.json"),
                        help="JSON results file (default: benchmarks/results/ablation.json)")
    return parser.parse_args()


def run_command(command):
    """Runs a command, returning its wall time in seconds; exits on failure."""
    start = time.perf_counter()
    completed = subprocess.run(command, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if completed.returncode:
        raise SystemExit(f"failed ({completed.returncode}): {' '.join(command)}")
    return time.perf_counter() - start


def one_run(args, variant, seed):
    """Trains and evaluates one variant at one seed; returns its record."""
    folder = args.runs / f"{variant.lstrip('+')}-seed{seed}"
    train = [sys.executable, "scripts/train.py", "--preset", args.preset, "--kl", "cyclical", "--no-xla",
             "--seed", str(seed), "--out", str(folder), "--verbose", "2", *VARIANTS[variant]]
    if args.epochs:
        train += ["--epochs", str(args.epochs)]
    if args.data:
        train += ["--data", args.data]
    evaluate = [sys.executable, "scripts/evaluate.py", "--run", str(folder), "--samples", str(args.samples),
                "--quiet"]
    if args.max_sequences:
        evaluate += ["--max-sequences", str(args.max_sequences)]
    metrics_path = folder / "eval" / "metrics.json"
    train_seconds = evaluate_seconds = None
    if not metrics_path.is_file():
        train_seconds = run_command(train)
        evaluate_seconds = run_command(evaluate)
    metrics = json.loads(metrics_path.read_text())
    run_info = json.loads((folder / "run.json").read_text())
    summary = metrics["summary"]
    return {
        "variant": variant,
        "seed": seed,
        "train_seconds": train_seconds and round(train_seconds, 1),
        "evaluate_seconds": evaluate_seconds and round(evaluate_seconds, 1),
        "steps": run_info["train"]["epochs"] * run_info["train"]["steps_per_epoch"],
        "sequences": metrics["protocol"]["sequences"],
        "copy_last": {m: summary["copy_last_frame"][m]["mean"] for m in ("psnr", "ssim")},
        **{key: {m: summary[key][m]["mean"] for m in ("psnr", "ssim")} for key in REPORTED},
        "commands": [" ".join(train[1:]), " ".join(evaluate[1:])],
    }


def table(records, samples):
    """Markdown table: mean +- standard deviation over seeds per variant."""

    def cell(values, digits):
        values = list(values)
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.{digits}f} +- {spread:.{digits}f}"

    lines = [
        f"| variant | PSNR 1 sample | PSNR best of {samples} | SSIM 1 sample | SSIM best of {samples} | "
        "copy-last PSNR / SSIM | train time per run |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant in VARIANTS:
        rows = [r for r in records if r["variant"] == variant]
        if not rows:
            continue
        times = [r["train_seconds"] for r in rows if r["train_seconds"]]
        time_cell = f"{statistics.median(times) / 60:.1f} min" if times else "-"
        lines.append(
            f"| {variant} | {cell((r['model_single']['psnr'] for r in rows), 2)} | "
            f"{cell((r['model_best_of_n']['psnr'] for r in rows), 2)} | "
            f"{cell((r['model_single']['ssim'] for r in rows), 4)} | "
            f"{cell((r['model_best_of_n']['ssim'] for r in rows), 4)} | "
            f"{statistics.mean(r['copy_last']['psnr'] for r in rows):.2f} / "
            f"{statistics.mean(r['copy_last']['ssim'] for r in rows):.4f} | {time_cell} |"
        )
    return "\n".join(lines)


def main():
    args = parse_args()
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    records = []
    for seed in args.seeds:  # seeds outermost: an early stop still compares every variant
        for variant in args.variants:
            records.append(one_run(args, variant, seed))
            result = {
                "what": "ablation of hierarchical latents and conditional convolution",
                "command": " ".join(sys.argv),
                "commit": commit,
                "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
                "records": records,
                "table": table(records, args.samples),
            }
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=2) + "\n")
            print(result["table"], flush=True)


if __name__ == "__main__":
    main()
