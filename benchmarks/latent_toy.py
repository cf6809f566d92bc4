"""Does the latent carry the future? The small preset on the bouncing toy, trained to a time budget.

Trains `--preset small --data bouncing` for `--minutes`, evaluates it (2 -> 10, 10 samples
per test sequence), and keeps what shows the latent at work beside a summary JSON: the
metrics, a GIF and a strip of one test sequence with five samples side by side, the KL
per latent dimension and rollout step over training, and the per-frame plot with the
samples' diversity.

    python benchmarks/latent_toy.py --minutes 15 --free-bits 1
    python benchmarks/latent_toy.py --minutes 15 -- --tfr-decay-step 0   # more train.py flags
"""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.results_file import write_results  # noqa: E402

SEQUENCE = 1  # the test sequence drawn (its disc turns within the predicted frames)
KEPT = {"eval/metrics.json": "metrics.json", f"eval/sequence-{SEQUENCE:04d}.gif": "samples.gif",
        f"eval/sequence-{SEQUENCE:04d}-strip.png": "samples-strip.png",
        "eval/per_frame_metrics.png": "per_frame_metrics.png", "latent_kl.png": "latent_kl.png",
        "latent_kl.json": "latent_kl.json", "curves.png": "curves.png", "log.csv": "log.csv"}


def run(*args):
    print("+ python " + " ".join(args), flush=True)
    subprocess.run([sys.executable, *args], cwd=ROOT, check=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=15.0, help="training budget (default: 15)")
    parser.add_argument("--free-bits", type=float, default=1.0, help="train.py --free-bits (default: 1)")
    parser.add_argument("--kl", default="none", help="train.py --kl (default: none)")
    parser.add_argument("--batch-size", type=int, default=8,
                        help="train.py --batch-size (default: 8, more steps in the budget than the preset's 16)")
    parser.add_argument("--samples", type=int, default=10, help="samples per test sequence (default: 10)")
    parser.add_argument("--out", default="benchmarks/results/latent-toy", help="folder of the kept files")
    argv = sys.argv[1:] if argv is None else list(argv)
    split = argv.index("--") if "--" in argv else len(argv)
    args, train_args = parser.parse_args(argv[:split]), argv[split + 1:]
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "run"
        run("scripts/train.py", "--preset", "small", "--data", "bouncing", "--kl", args.kl,
            "--free-bits", str(args.free_bits), "--batch-size", str(args.batch_size), "--time-limit", str(args.minutes), "--out", str(folder), "--verbose", "2", *train_args)
        run("scripts/evaluate.py", "--run", str(folder), "--samples", str(args.samples),
            "--gif-sequences", str(SEQUENCE), "--quiet")
        out = ROOT / args.out
        out.mkdir(parents=True, exist_ok=True)
        for source, name in KEPT.items():
            shutil.copyfile(folder / source, out / name)
        info = json.loads((folder / "run.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    latent = json.loads((out / "latent_kl.json").read_text())
    summary = metrics["summary"]
    one, best = summary["model_single"]["psnr"]["mean"], summary["model_best_of_n"]["psnr"]["mean"]
    results = {
        "copy_last_psnr": summary["copy_last_frame"]["psnr"]["mean"],
        "one_sample_psnr": one,
        f"best_of_{args.samples}_psnr": best,
        f"best_of_{args.samples}_minus_one_sample_db": best - one,
        "diversity_rms": metrics["diversity"]["mean"],
        "one_sample_rms_error": metrics["diversity"]["sample_rms_error"],
        "kl_per_step_last_epoch_nats": sum(latent["kl_per_step"][-1]) / len(latent["kl_per_step"][-1]),
        "epochs": info.get("epochs_done"),
        "time_limit": info.get("time_limit", {}).get("stopped"),
    }
    print(json.dumps(results, indent=2))
    write_results(out / "summary.json", "the latent on the bouncing toy: small preset, CPU time budget", results,
                  minutes=args.minutes, free_bits=args.free_bits, kl=args.kl, batch_size=args.batch_size, samples=args.samples,
                  train_args=train_args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
