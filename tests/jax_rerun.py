"""The JAX re-run of the `jax`-marked tests, started in the background at collection.

It is the slowest part of the suite (several minutes on 2 cores) and independent of the
rest, so conftest.py starts it as soon as the tests are collected and
`test_backends.test_marked_tests_pass_on_jax` only waits for its result.
"""

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST_NAME = "test_marked_tests_pass_on_jax"
MARKER = "jax and not tf_only"


@dataclass(frozen=True)
class JaxRun:
    """A running `pytest -m jax` process and the file its output goes to."""

    process: subprocess.Popen
    log: Path


def start() -> JaxRun:
    """Starts `pytest -m "jax and not tf_only"` with KERAS_BACKEND=jax in the background."""
    log = Path(tempfile.mkstemp(prefix="keras-cvae-jax-run-", suffix=".log")[1])
    with open(log, "w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", MARKER, str(ROOT / "tests")],
            cwd=ROOT,
            env={**os.environ, "KERAS_BACKEND": "jax"},
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
    return JaxRun(process, log)


def finish(run: JaxRun, timeout: float) -> tuple:
    """Waits for the run: (exit status, its output)."""
    try:
        status = run.process.wait(timeout=timeout)
        return status, run.log.read_text()
    finally:
        stop(run)


def stop(run: JaxRun):
    """Kills the run if it is still going and removes its log file."""
    if run.process.poll() is None:
        run.process.kill()
        run.process.wait()
    run.log.unlink(missing_ok=True)
