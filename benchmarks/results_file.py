"""The JSON a benchmark leaves in benchmarks/results/: its figures, command, commit and machine."""

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def write_results(path, benchmark: str, results: dict, **settings) -> Path:
    """Writes a benchmark's results with what is needed to reproduce and weigh them.

    Args:
        path: The JSON file (its folder is created).
        benchmark: What was measured, in words.
        results: The figures.
        **settings: The benchmark's settings (preset, batch size, ...), stored beside them.

    Returns:
        The path written.
    """
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    report = {
        "benchmark": benchmark, **settings, "results": results,
        "command": "python " + " ".join(sys.argv), "git_commit": commit,
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "processor": platform.processor()},
        "load_average_after": list(os.getloadavg()),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
    print(f"wrote {path}")
    return path
