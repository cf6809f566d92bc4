"""Time and peak memory of `scripts/export.py` (SavedModel, model.onnx, step.onnx, checks) per preset.

    python benchmarks/bench_export_svg.py                        # tiny, small and svg
    python benchmarks/bench_export_svg.py --presets svg --skip-savedmodel

For each preset an untrained model (time and memory do not depend on the weights) is saved
as a run folder in a temporary directory, then `python scripts/export.py --run RUN --out OUT`
runs in a fresh process: the export as a user runs it, every file checked in its runtime.
Reports its wall-clock seconds, its peak resident memory (the process and the children it
waited for, from os.wait4) and the sizes of the written files. Writes --out (default
benchmarks/results/export_svg.json) with the machine, command and commit.
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

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
EXPORT_SCRIPT = REPO / "scripts" / "export.py"


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the usage examples' line breaks and shows every default."""


def make_run(preset_name, folder):
    """Saves an untrained model of the preset as a run folder; returns its path."""
    from keras_cvae.run_folder import RunFolder
    from keras_cvae.tasks.svg.config import get_preset
    from keras_cvae.tasks.svg.model import SVG

    preset = get_preset(preset_name)
    model = SVG(preset.model, seed=0)
    run = RunFolder(Path(folder) / f"run-{preset_name}")
    run.write_info({
        "model": preset.model.to_dict(), "train": preset.train.to_dict(), "data": None,
        "condition_mean": [0.0] * preset.model.condition_dim,
        "condition_std": [1.0] * preset.model.condition_dim,
        "preset": preset_name, "created": "benchmark", "epochs_done": 0,
    })
    model.save(run.model_file)
    return run.path


def timed_export(run_dir, out_dir, skip_savedmodel):
    """Runs scripts/export.py in a fresh process: (seconds, peak RSS in MB, its stdout+stderr)."""
    command = [sys.executable, str(EXPORT_SCRIPT), "--run", str(run_dir), "--out", str(out_dir)]
    if skip_savedmodel:
        command.append("--skip-savedmodel")
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"export of {run_dir} failed:\n{output[-3000:]}")
    return seconds, usage.ru_maxrss / 1024.0, output  # Linux reports kilobytes.


def folder_megabytes(path):
    path = Path(path)
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return round(sum(p.stat().st_size for p in files) / 1e6, 3)


def git_commit():
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["tiny", "small", "svg"], help="presets to export")
    parser.add_argument("--skip-savedmodel", action="store_true", help="pass --skip-savedmodel to the export")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "export_svg.json"),
                        help="result JSON file")
    args = parser.parse_args(argv)

    import tensorflow as tf
    import tf2onnx

    from keras_cvae.files import atomic_write_text

    result = {
        "benchmark": "scripts/export.py per preset: wall-clock time and peak memory of the export process",
        "command": "python " + " ".join([f"benchmarks/{Path(__file__).name}", *(argv or sys.argv[1:])]),
        "git_commit": git_commit(),
        "machine": {
            "platform": platform.platform(), "python": platform.python_version(),
            "cpu_count": os.cpu_count(), "load_average_at_start": list(os.getloadavg()),
            "tensorflow": tf.__version__, "tf2onnx": tf2onnx.__version__,
        },
        "note": "untrained weights; each export runs in a fresh process and includes loading the "
        "run, writing every file and checking each one in its runtime against Keras",
        "presets": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench-export-svg-") as folder:
        for name in args.presets:
            run_dir = make_run(name, folder)
            out_dir = Path(folder) / f"export-{name}"
            seconds, peak_mb, output = timed_export(run_dir, out_dir, args.skip_savedmodel)
            result["presets"][name] = {
                "export_seconds": round(seconds, 1),
                "peak_rss_megabytes": round(peak_mb, 1),
                "files_megabytes": {p.name: folder_megabytes(p) for p in sorted(out_dir.iterdir())},
                "export_output": output.strip().splitlines()[-1],
                "load_average_after": list(os.getloadavg()),
            }
            print(name, json.dumps(result["presets"][name]), flush=True)
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
